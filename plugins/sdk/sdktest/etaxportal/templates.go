package etaxportal

import "html/template"

const css = `body{font-family:sans-serif;max-width:46em;margin:2em auto;color:#222}
header{background:#8b0000;color:#fff;padding:.6em 1em}label{display:block;margin:.6em 0 .2em}
input,select{padding:.3em;min-width:16em}.field-error,.login-error,.form-error{color:#b00;font-weight:bold}
#receipt{font-size:1.4em;font-family:monospace}`

const head = `<!doctype html><html><head><meta charset="utf-8"><title>{{block "title" .}}{{end}} · Demo e-Tax Bureau</title>
<link rel="stylesheet" href="/static/portal.css"></head><body><header>Demo e-Tax Bureau — electronic filing</header>`

var loginT = template.Must(template.New("login").Parse(head + `{{define "title"}}Log in{{end}}
<h1>Log in</h1>
{{with .Error}}<p class="login-error" role="alert">{{.}}</p>{{end}}
<form method="post" action="/login">
<input type="hidden" name="csrf" value="{{.CSRF}}">
<label for="username">User name</label><input id="username" name="username" autocomplete="username">
<label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password">
<p><button id="login" type="submit">Log in</button></p>
</form></body></html>`))

var companiesT = template.Must(template.New("companies").Parse(head + `{{define "title"}}Choose a taxpayer{{end}}
<h1>Choose the taxpayer to file for</h1>
{{with .Error}}<p class="form-error" role="alert">{{.}}</p>{{end}}
<form method="post" action="/companies">
<input type="hidden" name="csrf" value="{{.CSRF}}">
<label for="company">Taxpayer</label>
<select id="company" name="company"><option value="">— choose —</option>
{{range .Companies}}<option value="{{.ID}}">{{.Name}} ({{.ID}})</option>{{end}}
</select>
<p><button id="choose" type="submit">Continue</button></p>
</form></body></html>`))

var vatT = template.Must(template.New("vat").Parse(head + `{{define "title"}}VAT declaration{{end}}
<h1>VAT declaration</h1>
<p id="taxpayer">{{.Company.Name}} ({{.Company.ID}})</p>
{{if .Errors}}<div id="errors" role="alert"><p class="form-error">The declaration was not accepted:</p>
{{range .Errors}}<p class="field-error" data-field="{{.Field}}">{{.Field}}: {{.Message}}</p>{{end}}</div>{{end}}
<form method="post" action="/vat" id="vat-form">
<input type="hidden" name="csrf" value="{{.CSRF}}">
<label for="period">Tax period (YYYY-MM)</label><input id="period" name="period" value="{{.Form.period}}">
<label for="rate">VAT rate</label><select id="rate" name="rate">
{{range .Company.Rates}}<option value="{{.}}">{{.}}</option>{{end}}<option value="0.17">0.17 (until 2018)</option></select>
<label for="sales">Taxable sales</label><input id="sales" name="sales" value="{{.Form.sales}}">
<label for="output_vat">Output VAT</label><input id="output_vat" name="output_vat" value="{{.Form.output_vat}}">
<label for="input_vat">Deductible input VAT</label><input id="input_vat" name="input_vat" value="{{.Form.input_vat}}">
<label for="vat_due">VAT due</label><input id="vat_due" name="vat_due" value="{{.Form.vat_due}}">
<p><button id="submit" type="submit">Submit declaration</button></p>
</form></body></html>`))

var receiptT = template.Must(template.New("receipt").Parse(head + `{{define "title"}}Declaration accepted{{end}}
<h1>Declaration accepted</h1>
{{if .Duplicate}}<p id="duplicate">This period was already filed; this is its receipt.</p>{{end}}
<p>Taxpayer: {{.Company.Name}} ({{.Company.ID}}), period {{.Filing.Period}}</p>
<p>Receipt number: <span id="receipt">{{.Filing.Receipt}}</span></p>
<p>VAT due: <span id="vat-due">{{printf "%.2f" .Filing.VATDue}}</span></p>
</body></html>`))
