package store

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"sort"

	"github.com/rpacloud/rpacloud/ent"
	"github.com/rpacloud/rpacloud/ent/configrevision"
	"github.com/rpacloud/rpacloud/ent/privacy"
)

// RevisionHash is the hex sha256 of a configuration's files, canonical:
// sorted by name, each name and content length-prefixed, so that no two
// different sets of files share a hash.
func RevisionHash(files map[string]string) string {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	h := sha256.New()
	var n [8]byte
	for _, name := range names {
		for _, s := range []string{name, files[name]} {
			binary.BigEndian.PutUint64(n[:], uint64(len(s)))
			h.Write(n[:])
			h.Write([]byte(s))
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// LatestRevision is the configuration applied last; nil when none was.
func LatestRevision(ctx context.Context, c *ent.Client) (*ent.ConfigRevision, error) {
	sys := privacy.DecisionContext(ctx, privacy.Allow)
	r, err := c.ConfigRevision.Query().Order(ent.Desc(configrevision.FieldID)).First(sys)
	if ent.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("latest configuration revision: %w", err)
	}
	return r, nil
}
