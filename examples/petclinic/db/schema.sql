-- PetClinic schema and reference data; safe to run again (IF NOT EXISTS, INSERT IGNORE).
CREATE TABLE IF NOT EXISTS owners (
  id INT AUTO_INCREMENT PRIMARY KEY,
  first_name VARCHAR(30) NOT NULL,
  last_name VARCHAR(30) NOT NULL DEFAULT '',
  address VARCHAR(255) NOT NULL DEFAULT '',
  city VARCHAR(80) NOT NULL DEFAULT '',
  telephone VARCHAR(20) NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS pets (
  id INT AUTO_INCREMENT PRIMARY KEY,
  name VARCHAR(30) NOT NULL,
  birth_date DATE NULL,
  type VARCHAR(30) NOT NULL DEFAULT 'cat',
  owner_id INT NULL,
  KEY (owner_id)
);
CREATE TABLE IF NOT EXISTS visits (
  id INT AUTO_INCREMENT PRIMARY KEY,
  pet_id INT NOT NULL,
  visit_date DATE NULL,
  description VARCHAR(255) NOT NULL DEFAULT '',
  KEY (pet_id)
);
CREATE TABLE IF NOT EXISTS vets (
  id INT PRIMARY KEY,
  first_name VARCHAR(30) NOT NULL,
  last_name VARCHAR(30) NOT NULL
);
CREATE TABLE IF NOT EXISTS specialties (id INT PRIMARY KEY, name VARCHAR(80) NOT NULL);
CREATE TABLE IF NOT EXISTS vet_specialties (
  vet_id INT NOT NULL, specialty_id INT NOT NULL, PRIMARY KEY (vet_id, specialty_id)
);
INSERT IGNORE INTO vets VALUES (1, 'James', 'Carter'), (2, 'Helen', 'Leary'), (3, 'Linda', 'Douglas');
INSERT IGNORE INTO specialties VALUES (1, 'radiology'), (2, 'surgery'), (3, 'dentistry');
INSERT IGNORE INTO vet_specialties VALUES (2, 1), (3, 2), (3, 3);
