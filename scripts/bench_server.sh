#!/usr/bin/env bash
# `scripts/bench server`: requests/s of `sealwright serve` next to nginx (Debian) serving the
# same published tree with the same certificate, over loopback HTTPS, measured by wrk.
#   usage: bench_server.sh SEALWRIGHT WORK [SECONDS] [CONNECTIONS]
set -euo pipefail
BIN="$1"; WORK="$2"; SECS="${3:-5}"; CONNS="${4:-64}"
need=()
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx)
command -v wrk >/dev/null || need+=(wrk)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing ${need[*]} (Debian)..." >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"
[ -x "$NGINX" ] && command -v wrk >/dev/null || { echo "nginx or wrk missing after install" >&2; exit 1; }

PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

REPO="$WORK/server-repo"
"$BIN" init "$REPO" >/dev/null
head -c 1048576 /dev/urandom > "$WORK/one-mib.bin"
"$BIN" --repo "$REPO" add "$WORK/one-mib.bin" --name bench --version 1.0.0 >/dev/null
"$BIN" --repo "$REPO" publish >/dev/null
TARGET="$(cd "$REPO/published" && ls targets/bench/1.0.0/*.one-mib.bin)"

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
  -addext subjectAltName=IP:127.0.0.1,DNS:localhost -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>/dev/null

"$BIN" --repo "$REPO" --json serve --listen 127.0.0.1:0 --cert "$WORK/cert.pem" --key "$WORK/key.pem" \
  > "$WORK/serve.out" 2>"$WORK/serve.err" &
PIDS+=($!)
for _ in $(seq 100); do [ -s "$WORK/serve.out" ] && break; sleep 0.1; done
OURS="$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["url"])' "$WORK/serve.out")"

PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
mkdir -p "$WORK/nginx/tmp"
cat > "$WORK/nginx/nginx.conf" <<CONF
daemon off;
$( [ "$(id -u)" = 0 ] && echo "user root root;" )
worker_processes 2;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  client_body_temp_path $WORK/nginx/tmp;
  proxy_temp_path $WORK/nginx/tmp;
  fastcgi_temp_path $WORK/nginx/tmp;
  uwsgi_temp_path $WORK/nginx/tmp;
  scgi_temp_path $WORK/nginx/tmp;
  types { application/json json; }
  default_type application/octet-stream;
  server {
    listen 127.0.0.1:$PORT ssl;
    ssl_certificate $WORK/cert.pem;
    ssl_certificate_key $WORK/key.pem;
    root $REPO/published;
  }
}
CONF
"$NGINX" -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" &
PIDS+=($!)
NGINX_URL="https://127.0.0.1:$PORT"
for _ in $(seq 100); do curl -skf "$NGINX_URL/metadata/timestamp.json" >/dev/null && break; sleep 0.1; done
for url in "$OURS" "$NGINX_URL"; do
  curl -skf "$url/$TARGET" -o /dev/null \
    || { echo "$url does not serve $TARGET; see $WORK/nginx/error.log" >&2; exit 1; }
done

# wrk prints Requests/sec, Transfer/sec and, when any, "Non-2xx" and "Socket errors".
measure() {
  local out rps mbs errs
  out="$(wrk -t2 -c"$CONNS" -d"${SECS}s" "$1" 2>&1)"
  rps="$(awk '/Requests\/sec/ {print $2}' <<<"$out")"
  mbs="$(awk '/Transfer\/sec/ {print $2}' <<<"$out")"
  errs="$(grep -E 'Non-2xx|Socket errors' <<<"$out" | tr '\n' ' ' || true)"
  [ -n "$rps" ] || { echo "wrk failed against $1:" >&2; echo "$out" >&2; exit 1; }
  echo "$rps|$mbs|${errs:-none}"
}

echo
echo "wrk -t2 -c$CONNS -d${SECS}s, HTTPS (TLS 1.3, P-256 certificate), HTTP/1.1 keep-alive, loopback, 2 cores shared by server and load generator"
echo
echo "| file | server | requests/s | transfer/s | errors | ours vs nginx |"
echo "|---|---|---:|---:|---|---:|"
for path in metadata/timestamp.json "$TARGET"; do
  IFS='|' read -r o_rps o_mbs o_err <<<"$(measure "$OURS/$path")"
  IFS='|' read -r n_rps n_mbs n_err <<<"$(measure "$NGINX_URL/$path")"
  label="$path"; [ "$path" = "$TARGET" ] && label="1 MiB target"
  pct="$(python3 -c "print('%.0f%%' % (100*float('$o_rps')/float('$n_rps')))")"
  echo "| $label | sealwright serve | $o_rps | $o_mbs | $o_err | $pct |"
  echo "| $label | nginx | $n_rps | $n_mbs | $n_err | |"
done
