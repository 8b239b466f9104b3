# A dead process stays a zombie until its parent reaps it; kill -0 would call it alive.
alive() { s=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null); [ -n "$s" ] && [ "$s" != Z ]; }
APP={{ inputs.app_dir | safe_dir | quote }}
if [ -f "$APP/app.pid" ]; then
  pid=$(cat "$APP/app.pid")
  kill "$pid" 2>/dev/null || true
  for i in $(seq 50); do alive "$pid" || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$APP/app.pid"
fi
