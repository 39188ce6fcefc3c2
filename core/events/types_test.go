package events_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Events are made with Create alone, so every stored type is one of the
// Type constants: no other code outside the generated ent package sets the
// type column itself.
func TestEventsAreMadeWithCreate(t *testing.T) {
	for _, root := range []string{"../../core", "../../graph", "../../cmd", "../../plugins"} {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") ||
				strings.HasPrefix(filepath.ToSlash(path), "../../core/events/") {
				return err
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			if strings.Contains(string(b), "Event.Create()") || strings.Contains(string(b), ".SetType(") {
				t.Errorf("%s makes an event without events.Create", path)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}
