# How a robot files one VAT declaration on the demo portal. Variables:
# {{input.*}} is the task (one line of filings.jsonl), {{credentials.*}}
# the login delivered at run time, {{outputs.*}} what earlier steps read.

flow "vat-declaration" {
  crawler = "browser"

  step "navigate" {
    url = "http://127.0.0.1:8090/login"
  }
  step "fill" {
    selector = "#username"
    value    = "{{credentials.etax/demo.username}}"
  }
  step "fill" {
    selector = "#password"
    value    = "{{credentials.etax/demo.password}}"
  }
  step "click" {
    selector = "#login"
  }
  step "wait_for" {
    selector = "#company, .login-error"
  }
  # A refused login is our problem (a rotated password), not the
  # customer's: an execution error, retried.
  step "assert" {
    selector = ".login-error"
    state    = "absent"
    message  = "the portal refused the login"
  }
  # A taxpayer this login may not file for is the customer's data.
  step "select" {
    selector   = "#company"
    value      = "{{input.company}}"
    data_error = true
  }
  step "click" {
    selector = "#choose"
  }
  step "wait_for" {
    selector = "#vat-form"
  }
  step "fill" {
    selector = "#period"
    value    = "{{input.period}}"
  }
  step "select" {
    selector   = "#rate"
    value      = "{{input.rate}}"
    data_error = true
  }
  step "fill" {
    selector = "#sales"
    value    = "{{input.sales}}"
  }
  step "fill" {
    selector = "#output_vat"
    value    = "{{input.output_vat}}"
  }
  step "fill" {
    selector = "#input_vat"
    value    = "{{input.input_vat}}"
  }
  step "fill" {
    selector = "#vat_due"
    value    = "{{input.vat_due}}"
  }
  step "click" {
    selector = "#submit"
  }
  step "wait_for" {
    selector = "#receipt, .field-error"
    timeout  = "20s"
  }
  # The bureau's validation refused the declaration: a data error, final.
  step "assert" {
    selector   = ".field-error"
    state      = "absent"
    data_error = true
    message    = "the bureau refused the declaration"
  }
  step "extract" {
    selector = "#receipt"
    output   = "receipt"
  }
  step "extract" {
    selector = "#vat-due"
    output   = "vat_due"
  }
}
