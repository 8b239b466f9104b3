# A dead process stays a zombie until its parent reaps it; kill -0 would call it alive.
alive() { s=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null); [ -n "$s" ] && [ "$s" != Z ]; }
DIR={{ inputs.db_dir | safe_dir | quote }}
if [ -f "$DIR/mysqld.pid" ]; then
  pid=$(cat "$DIR/mysqld.pid")
  kill "$pid" 2>/dev/null || true
  for i in $(seq 300); do alive "$pid" || break; sleep 0.1; done
fi
