# A dead process stays a zombie until its parent reaps it; kill -0 would call it alive.
alive() { s=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null); [ -n "$s" ] && [ "$s" != Z ]; }
APP={{ inputs.app_dir | safe_dir | quote }}
if [ -f "$APP/app.pid" ] && alive "$(cat "$APP/app.pid")"; then exit 0; fi
cd "$APP"
# The process writes its own pid file before it becomes the app: a start interrupted
# between launching and recording can then never leave an app nobody knows about.
PYTHONPATH="$APP/lib" setsid sh -c 'echo $$ > app.pid; exec python3 app/petclinic.py' \
  </dev/null >>"$APP/app.log" 2>&1 &
