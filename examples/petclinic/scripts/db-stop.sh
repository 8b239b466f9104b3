DIR={{ inputs.db_dir }}
if [ -f "$DIR/mysqld.pid" ]; then
  pid=$(cat "$DIR/mysqld.pid")
  kill "$pid" 2>/dev/null || true
  for i in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
fi
