package lab

import (
	"os"
	"strings"
)

// LangFromEnv picks the lesson language from the locale: "zh" when
// LC_ALL, LC_MESSAGES or LANG (the first one set) says Chinese, else "en".
func LangFromEnv() string {
	for _, v := range []string{"LC_ALL", "LC_MESSAGES", "LANG"} {
		if s := os.Getenv(v); s != "" {
			if strings.HasPrefix(strings.ToLower(s), "zh") {
				return "zh"
			}
			return "en"
		}
	}
	return "en"
}
