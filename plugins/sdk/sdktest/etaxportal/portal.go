// Package etaxportal is a demo e-tax portal: a small web application in the
// shape of a government filing site, the target a crawler plugin's tests
// and the tax-filing example (examples/tax-filing) drive. It sits in the
// SDK's test kit so that plugin tests can use it importing only
// plugins/sdk. A user logs
// in, picks one of the companies they may file for, fills in a VAT
// declaration, and gets a receipt number when the bureau accepts it. The
// server validates every declaration and re-renders the form with the
// reasons when it refuses one, as real portals do; a crawler robot must
// tell that rejection (a data error) from a failure of its own.
//
// It also serves a small JSON API (login, filing status) for the HTTP
// crawler. Everything is in memory.
package etaxportal

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html/template"
	"math"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Company is a taxpayer a user may file for.
type Company struct {
	ID    string // taxpayer id, e.g. 91310000MA1FL0001X
	Name  string
	Rates []float64 // VAT rates the company may declare
}

// Companies are the five demo companies of the example.
var Companies = []Company{
	{ID: "91310000MA1FL0001A", Name: "Shanghai Harbour Trading Co., Ltd.", Rates: []float64{0.13, 0.09}},
	{ID: "91110000MA1FL0002B", Name: "Beijing Northwind Software Ltd.", Rates: []float64{0.06}},
	{ID: "91440300MA1FL0003C", Name: "Shenzhen Pearl Electronics Co., Ltd.", Rates: []float64{0.13}},
	{ID: "91330100MA1FL0004D", Name: "Hangzhou West Lake Tea Co., Ltd.", Rates: []float64{0.09, 0.13}},
	{ID: "91510100MA1FL0005E", Name: "Chengdu Panda Logistics Ltd.", Rates: []float64{0.09, 0.06}},
}

// Filing is an accepted declaration.
type Filing struct {
	Receipt   string    `json:"receipt"`
	Company   string    `json:"company"`
	Period    string    `json:"period"`
	Sales     float64   `json:"sales"`
	Rate      float64   `json:"rate"`
	OutputVAT float64   `json:"output_vat"`
	InputVAT  float64   `json:"input_vat"`
	VATDue    float64   `json:"vat_due"`
	FiledAt   time.Time `json:"filed_at"`
}

// Server is the portal.
type Server struct {
	user, password string
	now            func() time.Time

	mu       sync.Mutex
	sessions map[string]*session
	filings  map[string]*Filing // by company|period
	byNo     map[string]*Filing
	seq      int
	logins   int
	posts    int
}

type session struct {
	csrf    string
	company string
}

// New returns a portal that accepts one user.
func New(user, password string) *Server {
	return &Server{user: user, password: password, now: time.Now,
		sessions: map[string]*session{}, filings: map[string]*Filing{}, byNo: map[string]*Filing{}}
}

// Filings returns the accepted declarations, in receipt order.
func (s *Server) Filings() []Filing {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Filing, 0, len(s.byNo))
	for _, f := range s.byNo {
		out = append(out, *f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Receipt < out[j].Receipt })
	return out
}

// Stats returns how many logins and declaration posts the portal saw.
func (s *Server) Stats() (logins, posts int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logins, s.posts
}

// Handler serves the portal.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/login", http.StatusSeeOther) })
	mux.HandleFunc("GET /login", s.loginPage)
	mux.HandleFunc("POST /login", s.login)
	mux.HandleFunc("GET /companies", s.auth(s.companiesPage))
	mux.HandleFunc("POST /companies", s.auth(s.chooseCompany))
	mux.HandleFunc("GET /vat", s.auth(s.vatPage))
	mux.HandleFunc("POST /vat", s.auth(s.fileVAT))
	mux.HandleFunc("POST /logout", s.auth(s.logout))
	mux.HandleFunc("POST /api/login", s.apiLogin)
	mux.HandleFunc("GET /api/filings/{receipt}", s.apiAuth(s.apiFiling))
	mux.HandleFunc("GET /static/portal.css", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/css")
		fmt.Fprint(w, css)
	})
	return mux
}

func token() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (s *Server) newSession(w http.ResponseWriter) *session {
	id := token()
	ss := &session{csrf: token()}
	s.mu.Lock()
	s.sessions[id] = ss
	s.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: "ETAXSESSION", Value: id, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
	return ss
}

func (s *Server) session(r *http.Request) (string, *session) {
	c, err := r.Cookie("ETAXSESSION")
	if err != nil {
		return "", nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return c.Value, s.sessions[c.Value]
}

// auth sends visitors without a logged-in session to the login page and
// refuses posts without the session's CSRF token.
func (s *Server) auth(h func(http.ResponseWriter, *http.Request, *session)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		_, ss := s.session(r)
		if ss == nil || ss.company == "-" {
			http.Redirect(w, r, "/login", http.StatusSeeOther)
			return
		}
		if r.Method == http.MethodPost {
			if subtle.ConstantTimeCompare([]byte(r.PostFormValue("csrf")), []byte(ss.csrf)) != 1 {
				http.Error(w, "invalid or missing CSRF token", http.StatusForbidden)
				return
			}
		}
		h(w, r, ss)
	}
}

func (s *Server) checkLogin(user, password string) bool {
	u := subtle.ConstantTimeCompare([]byte(user), []byte(s.user))
	p := subtle.ConstantTimeCompare([]byte(password), []byte(s.password))
	return u&p == 1
}

func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) {
	// A fresh anonymous session carries the login form's CSRF token.
	ss := s.newSession(w)
	s.mu.Lock()
	ss.company = "-" // not logged in
	s.mu.Unlock()
	render(w, http.StatusOK, loginT, map[string]any{"CSRF": ss.csrf})
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	_, ss := s.session(r)
	if ss == nil || subtle.ConstantTimeCompare([]byte(r.PostFormValue("csrf")), []byte(ss.csrf)) != 1 {
		http.Error(w, "invalid or missing CSRF token", http.StatusForbidden)
		return
	}
	if !s.checkLogin(r.PostFormValue("username"), r.PostFormValue("password")) {
		render(w, http.StatusUnauthorized, loginT, map[string]any{"CSRF": ss.csrf, "Error": "Wrong user name or password."})
		return
	}
	s.mu.Lock()
	s.logins++
	s.mu.Unlock()
	ns := s.newSession(w) // a new session id at login: no fixation
	_ = ns
	http.Redirect(w, r, "/companies", http.StatusSeeOther)
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request, _ *session) {
	id, _ := s.session(r)
	s.mu.Lock()
	delete(s.sessions, id)
	s.mu.Unlock()
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

func (s *Server) companiesPage(w http.ResponseWriter, _ *http.Request, ss *session) {
	render(w, http.StatusOK, companiesT, map[string]any{"CSRF": ss.csrf, "Companies": Companies})
}

func company(id string) *Company {
	for i := range Companies {
		if Companies[i].ID == id {
			return &Companies[i]
		}
	}
	return nil
}

func (s *Server) chooseCompany(w http.ResponseWriter, r *http.Request, ss *session) {
	c := company(r.PostFormValue("company"))
	if c == nil {
		render(w, http.StatusUnprocessableEntity, companiesT, map[string]any{"CSRF": ss.csrf, "Companies": Companies,
			"Error": "You may not file for taxpayer " + r.PostFormValue("company") + "."})
		return
	}
	s.mu.Lock()
	ss.company = c.ID
	s.mu.Unlock()
	http.Redirect(w, r, "/vat", http.StatusSeeOther)
}

func (s *Server) vatPage(w http.ResponseWriter, r *http.Request, ss *session) {
	c := company(ss.company)
	if c == nil {
		http.Redirect(w, r, "/companies", http.StatusSeeOther)
		return
	}
	render(w, http.StatusOK, vatT, map[string]any{"CSRF": ss.csrf, "Company": c, "Form": map[string]string{}})
}

var periodRE = regexp.MustCompile(`^(\d{4})-(0[1-9]|1[0-2])$`)

// Validate checks a declaration the way the bureau does and returns the
// problems by field. It is exported so the example's test can count the
// filings it expects to be refused.
func Validate(c *Company, form map[string]string, now time.Time) map[string]string {
	errs := map[string]string{}
	num := func(field string) (float64, bool) {
		v := strings.TrimSpace(form[field])
		if v == "" {
			errs[field] = "Required."
			return 0, false
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			errs[field] = "Not a number: " + v + "."
			return 0, false
		}
		if f < 0 {
			errs[field] = "Must not be negative."
			return 0, false
		}
		if math.Round(f*100) != f*100 && math.Abs(math.Round(f*100)-f*100) > 1e-6 {
			errs[field] = "At most two decimals."
			return 0, false
		}
		return f, true
	}
	if m := periodRE.FindStringSubmatch(form["period"]); m == nil {
		errs["period"] = "Period must be YYYY-MM."
	} else {
		y, _ := strconv.Atoi(m[1])
		mo, _ := strconv.Atoi(m[2])
		start := time.Date(y, time.Month(mo), 1, 0, 0, 0, 0, time.UTC)
		if !start.AddDate(0, 1, 0).Before(now.AddDate(0, 0, 1)) {
			errs["period"] = "The period " + form["period"] + " has not ended yet."
		}
	}
	rate, rateOK := num("rate")
	if rateOK {
		allowed := false
		for _, r := range c.Rates {
			if math.Abs(r-rate) < 1e-9 {
				allowed = true
			}
		}
		if !allowed {
			errs["rate"] = fmt.Sprintf("Rate %v is not registered for this taxpayer.", rate)
			rateOK = false
		}
	}
	sales, salesOK := num("sales")
	out, outOK := num("output_vat")
	in, inOK := num("input_vat")
	due, dueOK := num("vat_due")
	// A cent either way: taxpayers' software rounds half-cents both ways.
	if salesOK && rateOK && outOK && math.Abs(math.Round(sales*rate*100)/100-out) > 0.0101 {
		errs["output_vat"] = fmt.Sprintf("Output VAT must be sales × rate = %.2f.", math.Round(sales*rate*100)/100)
	}
	if outOK && inOK && dueOK && math.Abs(math.Max(out-in, 0)-due) > 0.005 {
		errs["vat_due"] = fmt.Sprintf("VAT due must be output VAT − input VAT = %.2f.", math.Max(out-in, 0))
	}
	return errs
}

func (s *Server) fileVAT(w http.ResponseWriter, r *http.Request, ss *session) {
	c := company(ss.company)
	if c == nil {
		http.Redirect(w, r, "/companies", http.StatusSeeOther)
		return
	}
	form := map[string]string{}
	for _, f := range []string{"period", "sales", "rate", "output_vat", "input_vat", "vat_due"} {
		form[f] = r.PostFormValue(f)
	}
	s.mu.Lock()
	s.posts++
	s.mu.Unlock()
	if errs := Validate(c, form, s.now()); len(errs) > 0 {
		type fieldErr struct{ Field, Message string }
		var list []fieldErr
		for _, f := range []string{"period", "rate", "sales", "output_vat", "input_vat", "vat_due"} {
			if m, ok := errs[f]; ok {
				list = append(list, fieldErr{f, m})
			}
		}
		render(w, http.StatusUnprocessableEntity, vatT, map[string]any{"CSRF": ss.csrf, "Company": c, "Form": form, "Errors": list})
		return
	}
	p := func(f string) float64 { v, _ := strconv.ParseFloat(form[f], 64); return v }
	s.mu.Lock()
	key := c.ID + "|" + form["period"]
	f, dup := s.filings[key]
	if !dup {
		s.seq++
		f = &Filing{
			Receipt: fmt.Sprintf("VAT%s-%s-%06d", strings.ReplaceAll(form["period"], "-", ""), c.ID[len(c.ID)-5:], s.seq),
			Company: c.ID, Period: form["period"], Sales: p("sales"), Rate: p("rate"),
			OutputVAT: p("output_vat"), InputVAT: p("input_vat"), VATDue: p("vat_due"), FiledAt: s.now(),
		}
		s.filings[key] = f
		s.byNo[f.Receipt] = f
	}
	fc := *f
	s.mu.Unlock()
	// A second filing of the same period shows the first one's receipt:
	// a robot retrying after a crash gets the receipt, not a duplicate.
	render(w, http.StatusOK, receiptT, map[string]any{"Company": c, "Filing": fc, "Duplicate": dup})
}

// The JSON API: POST /api/login {"username","password"} sets the session
// cookie; GET /api/filings/{receipt} returns one filing.
func (s *Server) apiLogin(w http.ResponseWriter, r *http.Request) {
	var in struct{ Username, Password string }
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&in); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "body must be JSON"})
		return
	}
	if !s.checkLogin(in.Username, in.Password) {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "wrong user name or password"})
		return
	}
	ss := s.newSession(w)
	s.mu.Lock()
	ss.company = ""
	s.logins++
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "csrf": ss.csrf})
}

func (s *Server) apiAuth(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if _, ss := s.session(r); ss == nil || ss.company == "-" {
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "not logged in"})
			return
		}
		h(w, r)
	}
}

func (s *Server) apiFiling(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	f, ok := s.byNo[r.PathValue("receipt")]
	var fc Filing
	if ok {
		fc = *f
	}
	s.mu.Unlock()
	if !ok {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no filing " + r.PathValue("receipt")})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "accepted", "filing": fc})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func render(w http.ResponseWriter, code int, t *template.Template, data any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	if err := t.Execute(w, data); err != nil {
		fmt.Fprintf(w, "<p>template error: %s</p>", template.HTMLEscapeString(err.Error()))
	}
}
