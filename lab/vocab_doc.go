package lab

import (
	"fmt"
	"reflect"
	"strings"
	"time"
)

// VocabKind describes one check or action kind for `ctlab scenario vocab`
// and the generated reference in docs/scenario-format.md.
type VocabKind struct {
	Name   string       `json:"name"`
	Role   string       `json:"role"` // check | action
	Family string       `json:"family"`
	Doc    string       `json:"doc"`
	Fields []VocabField `json:"fields"`
}

// VocabField is one key of a kind's mapping. Hint is the default or the
// allowed values, from the field's `vocab` struct tag.
type VocabField struct {
	Name     string `json:"name"`
	Type     string `json:"type"`
	Optional bool   `json:"optional,omitempty"`
	Hint     string `json:"hint,omitempty"`
}

// Vocabulary lists every kind, actions first, in table order.
func Vocabulary() []VocabKind {
	out := make([]VocabKind, 0, len(vocabulary))
	for _, k := range vocabulary {
		vk := VocabKind{Name: k.name, Role: k.role, Family: k.family, Doc: k.doc}
		yamlFields(k.typ, func(name string, f reflect.StructField) {
			_, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			vk.Fields = append(vk.Fields, VocabField{Name: name, Type: typeName(f.Type),
				Optional: strings.Contains(opts, "omitempty"), Hint: f.Tag.Get("vocab")})
		})
		out = append(out, vk)
	}
	return out
}

// typeName says what a field holds, in scenario-file terms.
func typeName(t reflect.Type) string {
	switch {
	case t == reflect.TypeFor[time.Duration]():
		return "duration"
	case t == reflect.TypeFor[*Check]():
		return "check"
	case t.Kind() == reflect.Pointer:
		return typeName(t.Elem())
	case t.Kind() == reflect.Slice:
		return "[]" + typeName(t.Elem())
	case t.Kind() == reflect.Map:
		return "{" + typeName(t.Key()) + ": " + typeName(t.Elem()) + "}"
	case t.Kind() == reflect.Float64:
		return "number"
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Uint64:
		return "int"
	}
	return t.Kind().String()
}

// Args renders the fields as the reference writes them:
// "in, op? (==), value".
func (k VocabKind) Args() string {
	var parts []string
	for _, f := range k.Fields {
		s := "`" + f.Name + "`"
		if f.Optional {
			s += "?"
		}
		if f.Hint != "" {
			s += " (" + f.Hint + ")"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ", ")
}

// VocabMarkdown is the reference table of one role ("action" or "check"),
// as docs/scenario-format.md carries it between its generated markers.
func VocabMarkdown(role string) string {
	var b strings.Builder
	col := map[string]string{"action": "does", "check": "reads"}[role]
	fmt.Fprintf(&b, "| %s | family | arguments | %s |\n|---|---|---|---|\n", role, col)
	for _, k := range Vocabulary() {
		if k.Role != role {
			continue
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", k.Name, k.Family, strings.ReplaceAll(k.Args(), "|", `\|`), k.Doc)
	}
	return b.String()
}
