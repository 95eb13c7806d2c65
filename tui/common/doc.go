// Package common holds what every ctlab screen and component shares: styles, the keymap, sizes and the two-language strings.
package common
