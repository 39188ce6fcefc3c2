package graph

import (
	"errors"

	"github.com/rpacloud/rpacloud/ent/privacy"
)

func isPrivacyDenied(err error) bool { return errors.Is(err, privacy.Deny) }
