#!/bin/sh
# command.local.Command runs this with LAB_DIR and one EDGETUNE_FILE_<NAME> variable per file beside it.
LAB_DIR=${LAB_DIR:-/var/lib/edgetune-lab/lab}
mkdir -p "$LAB_DIR" && printf '%s' "$EDGETUNE_FILE_LAB_SH" > "$LAB_DIR/lab.sh" && printf '%s' "$EDGETUNE_FILE_NGINX_CONF" > "$LAB_DIR/nginx.conf" && printf '%s' "$EDGETUNE_FILE_TUNE_SH" > "$LAB_DIR/tune.sh" && printf '%s' "$EDGETUNE_FILE_HAPROXY_CFG" > "$LAB_DIR/haproxy.cfg" && sh "$LAB_DIR/lab.sh" up && sh "$LAB_DIR/lab.sh" tune "$LAB_DIR/tune.sh" && sh "$LAB_DIR/lab.sh" proxy-start "$LAB_DIR/haproxy.cfg" && cat "$LAB_DIR/tune-proxy.log"
