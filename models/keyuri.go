package models

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"gorm.io/gorm"
)

// KeyURIContents is what an otpauth://totp URI carries.
type KeyURIContents struct {
	Issuer  string
	Account string
	Secret  []byte
	Params  Params
}

// MinSecretSize is the shortest secret ParseKeyURI and ImportedEnrollment
// accept: RFC 4226 §4 requires at least 128 bits (and recommends 160, what
// totpadm itself generates).
const MinSecretSize = 16

// ParseKeyURI reads an otpauth://totp URI as written by totpadm, Authelia,
// Google Authenticator exports and most other systems: label
// "issuer:account" (or just "account"), secret, and optional issuer,
// algorithm, digits and period parameters.
//
// The label is unescaped before it is split, so the separator may be a
// literal ':' or "%3A" as the Key URI format allows. When the issuer
// parameter is present and the label starts with it and a ':', that is the
// split (so an issuer holding a ':' stays whole); otherwise the label splits
// at its first ':'. A label issuer that differs from the issuer parameter is
// refused: the label would then name a different account than intended.
//
// The account is returned exactly as the label spells it, byte for byte:
// not trimmed, case-folded or normalised, since it names a login and
// " admin" is not admin. (The Key URI format allows spaces after the
// colon; they are kept, and such a label names a login that begins with
// spaces.) Only an empty account is refused. raw itself is not trimmed
// either.
func ParseKeyURI(raw string) (KeyURIContents, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return KeyURIContents{}, fmt.Errorf("%w: not a URI", ErrInvalidURI)
	}
	if u.Scheme != "otpauth" || u.Host != "totp" {
		return KeyURIContents{}, fmt.Errorf("%w: want otpauth://totp/…, got %s://%s", ErrInvalidURI, u.Scheme, u.Host)
	}
	label, err := url.PathUnescape(strings.TrimPrefix(u.EscapedPath(), "/"))
	if err != nil {
		return KeyURIContents{}, fmt.Errorf("%w: bad label", ErrInvalidURI)
	}
	q := u.Query()
	var c KeyURIContents
	param := q.Get("issuer")
	if rest, ok := strings.CutPrefix(label, param+":"); ok && param != "" {
		c.Issuer, c.Account = param, rest
	} else if issuer, account, found := strings.Cut(label, ":"); found {
		c.Issuer, c.Account = issuer, account
	} else {
		c.Account = label
	}
	c.Issuer = strings.TrimSpace(c.Issuer)
	if param = strings.TrimSpace(param); param != "" {
		if c.Issuer != "" && !strings.EqualFold(c.Issuer, param) {
			return KeyURIContents{}, fmt.Errorf("%w: the label's issuer %q differs from the issuer parameter %q", ErrInvalidURI, c.Issuer, param)
		}
		c.Issuer = param
	}
	if c.Account == "" {
		return KeyURIContents{}, fmt.Errorf("%w: no account name in the label", ErrInvalidURI)
	}
	if c.Secret, err = DecodeSecret(q.Get("secret")); err != nil || len(c.Secret) == 0 {
		return KeyURIContents{}, fmt.Errorf("%w: missing or invalid secret", ErrInvalidURI)
	}
	if err := checkSecretSize(c.Secret); err != nil {
		return KeyURIContents{}, fmt.Errorf("%w: %w", ErrInvalidURI, err)
	}
	c.Params = DefaultParams
	if a := q.Get("algorithm"); a != "" {
		c.Params.Algorithm = strings.ToUpper(a)
	}
	for name, dst := range map[string]*int{"digits": &c.Params.Digits, "period": &c.Params.Period} {
		if v := q.Get(name); v != "" {
			if *dst, err = strconv.Atoi(v); err != nil {
				return KeyURIContents{}, fmt.Errorf("%w: %s=%q is not a number", ErrInvalidURI, name, v)
			}
		}
	}
	if err := c.Params.Validate(); err != nil {
		return KeyURIContents{}, fmt.Errorf("%w: %w", ErrInvalidURI, err)
	}
	return c, nil
}

// checkSecretSize refuses a secret shorter than MinSecretSize.
func checkSecretSize(secret []byte) error {
	if len(secret) < MinSecretSize {
		return fmt.Errorf("the secret has only %d bits; RFC 4226 requires at least %d", len(secret)*8, MinSecretSize*8)
	}
	return nil
}

// ImportedEnrollment is an enrollment of a secret the user already has in
// an authenticator app, moved here from another system.
func (s *Service) ImportedEnrollment(user User, secret []byte, p Params) (*Enrollment, error) {
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("import %s: %w", user, err)
	}
	if err := checkSecretSize(secret); err != nil {
		return nil, fmt.Errorf("import %s: %w", user, err)
	}
	own := append([]byte(nil), secret...)
	return &Enrollment{User: user, Params: p, secret: own, uri: KeyURI(s.cfg.Issuer, user.String(), own, p)}, nil
}

// Export is one user's enrollment as another system can import it.
type Export struct {
	URI    string
	Secret string // base32
	State  string
}

// ExportEnrollment opens user's secret and returns it as an otpauth URI,
// writing an audit row: an export hands out the second factor itself.
func (s *Service) ExportEnrollment(ctx context.Context, db *gorm.DB, user User) (Export, error) {
	sess, err := s.session(ctx, db)
	if err != nil {
		return Export{}, err
	}
	var out Export
	err = s.transaction(sess, func(tx *gorm.DB) error {
		cred, err := s.lockCredential(tx, sess.d, user.ID)
		if err != nil {
			return err
		}
		p, err := cred.params()
		if err != nil {
			return err
		}
		secret, err := s.openSecret(cred)
		if err != nil {
			return err
		}
		out = Export{URI: KeyURI(s.cfg.Issuer, user.String(), secret, p), Secret: secretEncoding.EncodeToString(secret), State: stateName(cred.State)}
		clear(secret)
		return s.audit(tx, ActionExport, user, "exported", "")
	})
	if err != nil {
		return Export{}, fmt.Errorf("export %s: %w", user, err)
	}
	return out, nil
}
