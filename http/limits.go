package http

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"

	"talentledger/domain"
)

// Limits on every decoded request body, whatever the command: no string
// longer than domain.MaxTextLen characters, none that is not plain text
// (domain.TextProblem) or that is blank but not empty, no list or map of
// more than MaxListLen entries. The domain checks each field's own rules
// (IDs, required text, amounts); these hold even for a field it might
// forget, so nothing oversized or unprintable ever reaches the log.
const MaxListLen = 100

// checkSizes walks a decoded request and refuses an oversized or
// unprintable string, or an oversized list or map, naming the field by its
// JSON pointer (RFC 6901) below path.
func checkSizes(v reflect.Value, path string) error {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return nil
		}
		return checkSizes(v.Elem(), path)
	case reflect.String:
		s := v.String()
		if len(s) > domain.MaxTextLen && utf8.RuneCountInString(s) > domain.MaxTextLen {
			return fieldErrorf(path, "%s is longer than %d characters", quotePointer(path), domain.MaxTextLen)
		}
		if p := domain.TextProblem(s); p != "" {
			return fieldErrorf(path, "%s %s", quotePointer(path), p)
		}
		if s != "" && strings.TrimSpace(s) == "" {
			return fieldErrorf(path, "%s is blank", quotePointer(path))
		}
	case reflect.Slice, reflect.Array:
		if v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.Uint8 {
			return nil // raw bytes, bounded by the body
		}
		if v.Len() > MaxListLen {
			return fieldErrorf(path, "%s has more than %d entries", quotePointer(path), MaxListLen)
		}
		for i := 0; i < v.Len(); i++ {
			if err := checkSizes(v.Index(i), path+"/"+strconv.Itoa(i)); err != nil {
				return err
			}
		}
	case reflect.Map:
		if v.Len() > MaxListLen {
			return fieldErrorf(path, "%s has more than %d entries", quotePointer(path), MaxListLen)
		}
		it := v.MapRange()
		for it.Next() {
			p := path + "/" + escapePointer(fmt.Sprint(it.Key().Interface()))
			if err := checkSizes(it.Key(), p); err != nil {
				return err
			}
			if err := checkSizes(it.Value(), p); err != nil {
				return err
			}
		}
	case reflect.Struct:
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name, skip := jsonName(f)
			if skip {
				continue
			}
			p := path
			switch {
			case f.Anonymous && f.Type.Kind() == reflect.Struct && f.Tag.Get("json") == "":
				// Inlined into the parent, exported or not, as JSON
				// does.
			case !f.IsExported():
				continue
			default:
				p = path + "/" + escapePointer(name)
			}
			if err := checkSizes(v.Field(i), p); err != nil {
				return err
			}
		}
	}
	return nil
}

// escapePointer escapes one reference token of a JSON pointer.
func escapePointer(s string) string {
	if !strings.ContainsAny(s, "~/") {
		return s
	}
	return pointerEscaper.Replace(s)
}

// pointerEscaper is built once: building a Replacer costs more than
// most requests' whole check of their limits.
var pointerEscaper = strings.NewReplacer("~", "~0", "/", "~1")

// jsonName returns the JSON name of a struct field, and whether
// JSON skips it.
func jsonName(f reflect.StructField) (name string, skip bool) {
	tag := f.Tag.Get("json")
	if tag == "-" {
		return "", true
	}
	name, _, _ = strings.Cut(tag, ",")
	if name == "" {
		name = f.Name
	}
	return name, false
}
