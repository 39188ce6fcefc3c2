package delivery

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/rpacloud/rpacloud/core/auth"
	"github.com/rpacloud/rpacloud/core/documents"
	"github.com/rpacloud/rpacloud/core/lifecycle"
	"github.com/rpacloud/rpacloud/ent"
	"github.com/rpacloud/rpacloud/ent/downloadticket"
	"github.com/rpacloud/rpacloud/ent/schema/viewer"
	"github.com/rpacloud/rpacloud/ent/token"
)

// TicketTTL is how long a download link works.
const TicketTTL = 10 * time.Minute

// DownloadPath is the route of download links; the ticket follows it.
const DownloadPath = "/download/"

// DocumentParams is what a document ticket serves.
type DocumentParams struct {
	Process  string             `json:"process"`
	Kind     documents.Kind     `json:"kind"`
	Format   documents.Format   `json:"format"`
	Language documents.Language `json:"language"`
}

// RDPParams is what an .rdp ticket serves.
type RDPParams struct {
	Process string `json:"process"`
	VM      string `json:"vm"`
}

// DocumentURL checks the request and returns a short-lived link to the
// rendered document.
func (s *Service) DocumentURL(ctx context.Context, p viewer.Principal, dp DocumentParams) (string, error) {
	if err := mayRead(p); err != nil {
		return "", err
	}
	if _, err := s.processByName(ctx, p, dp.Process); err != nil {
		return "", err
	}
	if dp.Kind == documents.Manual && dp.Format == documents.XLSX {
		return "", fmt.Errorf("%w: the manual is prose, not a sheet; ask for md, html or pdf", ErrBadInput)
	}
	return s.ticket(ctx, p, downloadticket.KindDocument, dp)
}

// ConnectURL records the access (see Connect) and returns a link to the
// VM's .rdp file, or "" for SSH and VNC endpoints, which need no file.
func (s *Service) ConnectURL(ctx context.Context, p viewer.Principal, process, vmName, purpose string) (documents.VM, lifecycle.Stage, string, error) {
	v, stage, err := s.Connect(ctx, p, process, vmName, purpose)
	if err != nil || v.Protocol != "rdp" {
		return v, stage, "", err
	}
	url, err := s.ticket(ctx, p, downloadticket.KindRdp, RDPParams{Process: process, VM: vmName})
	return v, stage, url, err
}

func (s *Service) ticket(ctx context.Context, p viewer.Principal, kind downloadticket.Kind, params any) (string, error) {
	if p.TokenID == 0 {
		return "", fmt.Errorf("%w: download links are issued to API tokens only", ErrForbidden)
	}
	blob, err := json.Marshal(params)
	if err != nil {
		return "", fmt.Errorf("ticket: %w", err)
	}
	raw := make([]byte, 20)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("ticket: %w", err)
	}
	secret := strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(raw))
	now := s.now()
	// Expired tickets are dropped as new ones are made, so the table stays
	// small without a sweeper.
	if _, err := s.Client.DownloadTicket.Delete().Where(downloadticket.ExpiresAtLT(now)).Exec(sys(ctx)); err != nil {
		return "", fmt.Errorf("ticket: prune: %w", err)
	}
	err = s.Client.DownloadTicket.Create().SetHash(auth.Hash(secret)).SetKind(kind).SetParams(string(blob)).
		SetTokenID(p.TokenID).SetExpiresAt(now.Add(TicketTTL)).SetCreatedAt(now).Exec(sys(ctx))
	if err != nil {
		return "", fmt.Errorf("ticket: %w", err)
	}
	return strings.TrimRight(s.PublicURL, "/") + DownloadPath + secret, nil
}

// principalOf re-checks the token behind a ticket: a revoked or expired
// token's links die with it.
func (s *Service) principalOf(ctx context.Context, tokenID int) (viewer.Principal, error) {
	t, err := s.Client.Token.Query().Where(token.ID(tokenID)).Only(sys(ctx))
	if err != nil {
		return viewer.Principal{}, auth.ErrUnauthenticated
	}
	if t.RevokedAt != nil || (t.ExpiresAt != nil && s.now().After(*t.ExpiresAt)) {
		return viewer.Principal{}, auth.ErrUnauthenticated
	}
	return viewer.Principal{TokenID: t.ID, Name: t.Name, Role: viewer.Role(t.Role), CustomerID: t.CustomerID, RobotID: t.RobotID}, nil
}

// DownloadHandler serves GET /download/{ticket}: documents and .rdp files
// behind short-lived tickets, so browsers can follow a plain link.
func (s *Service) DownloadHandler(log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.Default()
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		secret := strings.TrimPrefix(r.URL.Path, DownloadPath)
		ctx := r.Context()
		t, err := s.Client.DownloadTicket.Query().Where(downloadticket.Hash(auth.Hash(secret))).Only(sys(ctx))
		if err != nil || s.now().After(t.ExpiresAt) {
			if err != nil && !ent.IsNotFound(err) {
				log.Error("download: ticket", "err", err)
			}
			http.Error(w, "unknown or expired download link: ask the platform for a new one", http.StatusNotFound)
			return
		}
		p, err := s.principalOf(ctx, t.TokenID)
		if err != nil {
			http.Error(w, "the token this link was made for is revoked or expired", http.StatusForbidden)
			return
		}
		var body []byte
		var name, ctype string
		switch t.Kind {
		case downloadticket.KindDocument:
			var dp DocumentParams
			if err = json.Unmarshal([]byte(t.Params), &dp); err == nil {
				body, err = s.Render(ctx, p, dp.Process, dp.Kind, dp.Format, dp.Language)
				name, ctype = documents.FileName(dp.Process, dp.Kind, dp.Format, dp.Language), dp.Format.ContentType()
			}
		case downloadticket.KindRdp:
			var rp RDPParams
			if err = json.Unmarshal([]byte(t.Params), &rp); err == nil {
				body, err = s.rdp(ctx, p, rp)
				name, ctype = rp.VM+".rdp", "application/x-rdp"
			}
		}
		if err != nil {
			code := http.StatusInternalServerError
			switch {
			case errors.Is(err, ErrNotFound):
				code = http.StatusNotFound
			case errors.Is(err, ErrForbidden):
				code = http.StatusForbidden
			case errors.Is(err, ErrBadInput):
				code = http.StatusBadRequest
			default:
				log.Error("download", "kind", t.Kind, "err", err)
			}
			http.Error(w, err.Error(), code)
			return
		}
		w.Header().Set("Content-Type", ctype)
		w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": name}))
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(body)
	})
}

func (s *Service) rdp(ctx context.Context, p viewer.Principal, rp RDPParams) ([]byte, error) {
	vms, err := s.Endpoints(ctx, p, rp.Process)
	if err != nil {
		return nil, err
	}
	for _, v := range vms {
		if v.Name == rp.VM {
			b, err := documents.RDPFile(v)
			if err != nil {
				return nil, fmt.Errorf("%w: %v", ErrNotFound, err)
			}
			return b, nil
		}
	}
	return nil, fmt.Errorf("%w: VM %q is gone", ErrNotFound, rp.VM)
}
