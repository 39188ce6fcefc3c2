package robotapi_test

import ()
