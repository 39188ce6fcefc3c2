// Command rpacloud-crawler-http is the HTTP crawler plugin as its own
// executable, for a plugin directory.
package main

import httpcrawler "github.com/rpacloud/rpacloud/plugins/crawler/http"

func main() { httpcrawler.Main() }
