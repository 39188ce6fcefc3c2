package secret

import (
	"encoding/json"
	"strings"
	"testing"
)

// A runner's output or message that echoes a secret (a login page that
// shows the password back) leaves the robot without it, raw or escaped
// inside JSON.
func TestSecretsScrub(t *testing.T) {
	s := Secrets{"etax/acme": {Username: "acme-filer", Password: `pa"ss\word1`, TOTPSeed: "JBSWY3DPEHPK3PXP",
		Extra: map[string]string{"pin": "4711", "x": "ab"}}}
	out, _ := json.Marshal(map[string]string{"page": `Welcome acme-filer, your password pa"ss\word1 is weak; pin 4711; code JBSWY3DPEHPK3PXP; ab`})
	got := s.Scrub(string(out))
	for _, v := range []string{`pa"ss\word1`, `pa\"ss\\word1`, "4711", "JBSWY3DPEHPK3PXP"} {
		if strings.Contains(got, v) {
			t.Errorf("scrubbed output still holds %q: %s", v, got)
		}
	}
	if !json.Valid([]byte(got)) {
		t.Errorf("scrubbed JSON is no longer JSON: %s", got)
	}
	if !strings.Contains(got, "acme-filer") || !strings.Contains(got, "ab") {
		t.Errorf("usernames and values under three characters are not secrets to scrub: %s", got)
	}
	if msg := s.Scrub("login failed for pa\"ss\\word1"); strings.Contains(msg, "word1") {
		t.Errorf("message: %s", msg)
	}
}
