# Runs that start themselves: the nightly invoice download on working days
# of the Chinese calendar (holidays off, 调休 Saturdays on), inside the
# "nightly" slot acme-finance booked on the run schedule.

calendar "cn-2026" {
  file    = "calendars/cn-2026.txt"
  weekend = ["sat", "sun"]
}

trigger "invoice-nightly" {
  process        = "invoice-download"
  cron           = "30 2 * * *"
  timezone       = "Asia/Shanghai"
  calendar       = "cn-2026"
  days           = "working"
  catch_up       = "once"
  slot           = "nightly"
  label          = "nightly invoice download"
  input_template = "{\"day\":\"{{.Prev}}\"}"
}
