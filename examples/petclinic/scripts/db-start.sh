# Start mariadbd detached from this session (setsid, no inherited descriptors), unless
# it already runs; then wait until it answers.
# A dead process stays a zombie until its parent reaps it; kill -0 would call it alive.
alive() { s=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null); [ -n "$s" ] && [ "$s" != Z ]; }
DIR={{ inputs.db_dir | safe_dir | quote }}
PATH=$PATH:/usr/sbin
if [ -f "$DIR/mysqld.pid" ] && alive "$(cat "$DIR/mysqld.pid")"; then
  exit 0
fi
setsid mariadbd --defaults-file="$DIR/my.cnf" --user=root </dev/null >/dev/null 2>&1 &
for i in $(seq 150); do
  mariadb --defaults-file="$DIR/my.cnf" -e "SELECT 1" >/dev/null 2>&1 && exit 0
  sleep 0.1
done
echo "mariadbd did not start:"; tail -20 "$DIR/error.log"; exit 1
