# MariaDB for PetClinic: its own datadir, port and socket under DB_DIR, binlog ready
# for hotsite replication (ROW, FULL image, FULL metadata, a server_id per site).
DIR={{ inputs.db_dir | safe_dir | quote }}
PORT={{ inputs.db_port | quote }}
SERVER_ID={{ inputs.server_id | quote }}
# Values go into shell variables first: expanded in the here-document below, their
# text is never run (a value written straight into it would be: `$(...)`).
mkdir -p "$DIR/tmp"
# tmpdir of its own: every mariadbd deletes the #sql* files in its tmpdir when it
# starts, so in a shared /tmp a server starting next to this one (or a second install
# at the same time) removes this one's temporary tables mid-statement.
cat > "$DIR/my.cnf" <<CNF
[mariadbd]
datadir=$DIR/data
tmpdir=$DIR/tmp
socket=$DIR/mysqld.sock
pid-file=$DIR/mysqld.pid
log-error=$DIR/error.log
port=$PORT
bind-address=0.0.0.0
server-id=$SERVER_ID
log-bin=binlog
binlog-format=ROW
binlog-row-image=FULL
binlog-row-metadata=FULL
gtid-domain-id=$SERVER_ID
skip-name-resolve=1
innodb-buffer-pool-size=64M
innodb-log-file-size=16M
character-set-server=utf8mb4
[client]
socket=$DIR/mysqld.sock
user=root
CNF
# Initialise into a new directory and rename it at the end, so an interrupted run
# (kill -9 of `up`) never leaves a half-made datadir that looks finished.
if [ ! -d "$DIR/data/mysql" ]; then
  rm -rf "$DIR/data.new"
  mariadb-install-db --defaults-file="$DIR/my.cnf" --datadir="$DIR/data.new" \
    --auth-root-authentication-method=normal --skip-test-db --user=root \
    >"$DIR/install.log" 2>&1 || { cat "$DIR/install.log"; exit 1; }
  rm -rf "$DIR/data" && mv "$DIR/data.new" "$DIR/data"
fi
