package http

import (
	"reflect"
	"strings"
	"unicode/utf8"

	"talentledger/domain"
)

// Limits on every decoded request body, whatever the command: no string
// longer than domain.MaxTextLen characters, no list or map of more than
// MaxListLen entries. The domain checks each field's own rules (IDs,
// free text without control characters, amounts); these bounds hold even
// for a field it might forget, so nothing oversized ever reaches the log.
const MaxListLen = 100

// checkSizes walks a decoded request and refuses an oversized string,
// list or map, naming the field by its JSON path.
func checkSizes(v reflect.Value, path string) error {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return nil
		}
		return checkSizes(v.Elem(), path)
	case reflect.String:
		if s := v.String(); len(s) > domain.MaxTextLen && utf8.RuneCountInString(s) > domain.MaxTextLen {
			return domain.Errorf(domain.EINVALID, "%s is longer than %d characters", fieldName(path), domain.MaxTextLen)
		}
	case reflect.Slice, reflect.Array:
		if v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.Uint8 {
			return nil // raw bytes, bounded by the body
		}
		if v.Len() > MaxListLen {
			return domain.Errorf(domain.EINVALID, "%s has more than %d entries", fieldName(path), MaxListLen)
		}
		for i := 0; i < v.Len(); i++ {
			if err := checkSizes(v.Index(i), path+"[]"); err != nil {
				return err
			}
		}
	case reflect.Map:
		if v.Len() > MaxListLen {
			return domain.Errorf(domain.EINVALID, "%s has more than %d entries", fieldName(path), MaxListLen)
		}
		it := v.MapRange()
		for it.Next() {
			if err := checkSizes(it.Key(), path+"{}"); err != nil {
				return err
			}
			if err := checkSizes(it.Value(), path+"{}"); err != nil {
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
				// Promoted into the parent, exported or not, as
				// encoding/json does.
			case !f.IsExported():
				continue
			default:
				p = joinPath(path, name)
			}
			if err := checkSizes(v.Field(i), p); err != nil {
				return err
			}
		}
	}
	return nil
}

func joinPath(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func fieldName(path string) string {
	if path == "" {
		return "the body"
	}
	return path
}

// jsonName returns the JSON name of a struct field, and whether
// encoding/json skips it.
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
