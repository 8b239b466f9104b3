APP={{ inputs.app_dir }}
if [ -f "$APP/app.pid" ]; then
  pid=$(cat "$APP/app.pid")
  kill "$pid" 2>/dev/null || true
  for i in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$APP/app.pid"
fi
