#!/bin/sh
# The requests `make demo` prints, against a pdqmatch serve on $PDQMATCH_URL
# (default http://127.0.0.1:8080) over a store of samples/ in bank
# 'samples' and samples/partner-hashes.csv in bank 'partner'.
# Run from the top of the checkout; every request must succeed (curl -f).
set -e
U=${PDQMATCH_URL:-http://127.0.0.1:8080}
run() { echo "\$ $*"; "$@"; echo; }

run curl -sf "$U/v1/banks"
run curl -sf "$U/v1/lookup?hash=d8f8f0cee0f4a84f0637022a078f67f0b36e2ed596621e1d33e6339c4e9c9b22"
run curl -sf -H 'Content-Type: image/jpeg' --data-binary @samples/bridge-rotate-90.jpg "$U/v1/lookup/media?dihedral=1"
run curl -sf -H 'Content-Type: image/jpeg' --data-binary @samples/street.jpg "$U/v1/lookup/media"
run curl -sf -H 'Content-Type: video/mp4' --data-binary @samples/videos/chair-22-with-small-logo-bar.mp4 "$U/v1/lookup/media"
run curl -sf -F file=@samples/pen-and-coaster.png "$U/v1/hash"
run curl -sf -X POST -H 'Content-Type: application/json' -d '{"name":"reported","threshold":31}' "$U/v1/banks"
run curl -sf -X POST -H 'Content-Type: application/json' -d '{"items":[{"hash":"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef","quality":100,"content_id":"case-42","metadata":{"ticket":42}}]}' "$U/v1/banks/reported/hashes"
run curl -sf "$U/v1/lookup?hash=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef&banks=reported"
run curl -sf -X DELETE "$U/v1/banks/reported/content/case-42"
run curl -sf -X DELETE "$U/v1/banks/reported"
run curl -sf "$U/v1/stats"
