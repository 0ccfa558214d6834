#!/bin/sh
# command.local.Command runs this with LAB_DIR and one EDGETUNE_FILE_<NAME> variable per file beside it.
LAB_DIR=${LAB_DIR:-/var/lib/edgetune-lab/lab}
mkdir -p "$LAB_DIR" && printf '%s' "$EDGETUNE_FILE_LAB_SH" > "$LAB_DIR/lab.sh" && sh "$LAB_DIR/lab.sh" down
