package lab

import (
	"strings"
	"testing"
)

// TestImageVocabValidates: the image kinds resolve their names at load
// time (an image is usable only after the action that makes it; image_run
// needs a declared, not yet started container), check their arguments,
// and a reset knows every store name the scenario can make.
func TestImageVocabValidates(t *testing.T) {
	src := `id: t1
chapter: overlay
title: {en: T, zh: T}
summary: {en: S, zh: S}
minutes: 5
containers:
  box: {namespaces: [mnt, pid]}
steps:
  - id: a
    kind: demo
    text: {en: x, zh: x}
    do:
      - image_import: {tag: base}
      - build: {tag: app, dockerfile: "FROM t1-base\n", files: {a.txt: a}}
      - image_tag: {image: app, as: app-v1}
      - image_run: {image: app-v1, container: box}
      - image_rm: {image: app}
      - registry: {as: hub}
      - image_push: {image: app-v1, registry: hub}
      - image_pull: {registry: hub, image: app-v1, as: back}
    expect:
      - image_exists: {image: app-v1}
      - image_layer_count: {image: app, op: ">=", value: 2}
      - image_size: {image: app, op: "<", than: base}
      - image_size: {image: app, op: "<", value: 10M}
      - layer_has_whiteout: {image: app, layer: 1, path: /x}
      - history_contains: {image: app, value: RUN}
      - grade_passes: {homework: nginx-hello, image: app}
      - log_contains: {in: box, value: hi}
      - registry_has: {registry: hub, image: app-v1}
`
	s, err := load(t, src)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(s.scenarioImages(), " "); got != "t1-app-v1:latest t1-app:latest t1-back:latest t1-base:latest" {
		t.Errorf("scenarioImages = %q", got)
	}
	for _, c := range []struct{ from, to, want string }{
		{"image_import: {tag: base}", "image_import: {tag: Base}", `image "Base": want a new lower-case name`},
		{`image_run: {image: app-v1, container: box}`, `image_run: {image: nope, container: box}`, `"nope" is not host or a container`},
		{`image_run: {image: app-v1, container: box}`, `image_run: {image: app-v1, container: web}`, `"web" is not declared under containers`},
		{`build: {tag: app, dockerfile: "FROM t1-base\n", files: {a.txt: a}}`, `build: {tag: app}`, "give dockerfile (with files), context_from, or both"},
		{`files: {a.txt: a}`, `files: {../a: a}`, `file "../a": want a relative path`},
		{`image_size: {image: app, op: "<", than: base}`, `image_size: {image: app, op: "<", than: base, value: 1M}`, "not both"},
		{`image_size: {image: app, op: "<", value: 10M}`, `image_size: {image: app, op: "<", value: ten}`, "value:"},
		{`layer: 1, path: /x`, `layer: 1, path: x`, `path "x" must be absolute`},
		{`homework: nginx-hello`, `homework: nope`, `no built-in homework "nope"`},
		{`history_contains: {image: app, value: RUN}`, `history_contains: {image: app, value: ""}`, "value: want the text"},
		{`image_push: {image: app-v1, registry: hub}`, `image_push: {image: app-v1, registry: box}`, `"box" is a container; want a registry`},
		{`as: back}`, `as: box}`, `image "box": want a new lower-case name`},
		{`log_contains: {in: box, value: hi}`, `log_contains: {in: hub, value: hi}`, `"hub" is a registry; want a container`},
	} {
		bad := strings.Replace(src, c.from, c.to, 1)
		if bad == src {
			t.Fatalf("%q not in the test scenario", c.from)
		}
		wantErr(t, bad, c.want)
	}
}
