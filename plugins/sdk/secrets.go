package sdk

// SensitiveAttributes are the attributes a plugin's configuration schema
// declares Sensitive, in declaration order: where the daemon and the robot
// put the secrets of a vendor's credential, so that routing follows what
// the plugin says about itself instead of a list kept beside it.
func SensitiveAttributes(schema []ConfigAttribute) []string {
	var out []string
	for _, a := range schema {
		if a.Sensitive {
			out = append(out, a.Name)
		}
	}
	return out
}

// SecretAttribute is the attribute that takes a credential's secret field:
// the Sensitive attribute of that name, else the first Sensitive attribute
// declared (a credential's generic "password", or a Vault reference's
// field that names none). ok is false when the plugin declares no
// Sensitive attribute and so takes no secret.
func SecretAttribute(schema []ConfigAttribute, field string) (attr string, ok bool) {
	sens := SensitiveAttributes(schema)
	if len(sens) == 0 {
		return "", false
	}
	for _, s := range sens {
		if s == field {
			return s, true
		}
	}
	return sens[0], true
}
