# The application's database, user and tables. The password comes from the secret
# (environment only). It is never on a command line (`ps` on the node shows those) nor
# pasted raw into SQL (a quote in it would end the string): it reaches the client on
# its standard input, as an SQL string literal. printf is a shell builtin: no process
# gets the password as an argument.
DIR={{ inputs.db_dir | safe_dir | quote }}
sql() { mariadb --defaults-file="$DIR/my.cnf" "$@"; }
# The string literal: backslashes doubled, quotes doubled (the server runs without
# NO_BACKSLASH_ESCAPES, as db-configure.sh sets it up).
password=$(printf '%s' "$DB_PASSWORD" | sed -e 's/\\/\\\\/g' -e "s/'/''/g")
printf '%s\n' \
  "CREATE DATABASE IF NOT EXISTS petclinic;" \
  "CREATE USER IF NOT EXISTS 'petclinic'@'%' IDENTIFIED BY '$password';" \
  "ALTER USER 'petclinic'@'%' IDENTIFIED BY '$password';" \
  "GRANT ALL ON petclinic.* TO 'petclinic'@'%';" | sql
sql petclinic < "$DIR/schema.sql"
