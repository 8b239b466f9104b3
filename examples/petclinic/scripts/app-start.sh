APP={{ inputs.app_dir }}
if [ -f "$APP/app.pid" ] && kill -0 "$(cat "$APP/app.pid")" 2>/dev/null; then exit 0; fi
cd "$APP"
PYTHONPATH="$APP/lib" setsid python3 app/petclinic.py </dev/null >>"$APP/app.log" 2>&1 &
echo $! > "$APP/app.pid"
