# The application's database, user and tables. The password comes from the secret
# (environment only), never from this file.
DIR={{ inputs.db_dir }}
SQL="mariadb --defaults-file=$DIR/my.cnf"
$SQL -e "CREATE DATABASE IF NOT EXISTS petclinic"
$SQL -e "CREATE USER IF NOT EXISTS 'petclinic'@'%' IDENTIFIED BY '$DB_PASSWORD';
         ALTER USER 'petclinic'@'%' IDENTIFIED BY '$DB_PASSWORD';
         GRANT ALL ON petclinic.* TO 'petclinic'@'%'"
$SQL petclinic < {{ inputs.db_dir }}/schema.sql
