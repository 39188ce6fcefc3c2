// Command rpacloud-crawler-browser is the browser crawler plugin as its own
// executable, for a plugin directory.
package main

import "github.com/rpacloud/rpacloud/plugins/crawler/browser"

func main() { browser.Main() }
