-- Demo source tables for docker-compose's mysql_source, matching the shipped tables.json:
--   orders       primary key id                  modifier updated_at (incremental)
--   order_items  primary key (order_id, line_no) modifier updated_at (incremental)
--   countries    primary key code                no modifier        (full refresh)
-- The MariaDB image runs this once, on first start, in MARIADB_DATABASE (SOURCE_DB_NAME).
-- The same file loads into any database by hand: mariadb -D <db> < 01-demo-schema.sql

CREATE TABLE countries (
  code CHAR(2) NOT NULL,
  name VARCHAR(100) CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci NOT NULL,
  continent ENUM('Africa','Americas','Asia','Europe','Oceania') NOT NULL,
  population BIGINT UNSIGNED NULL,
  PRIMARY KEY (code)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE orders (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  customer_email VARCHAR(255) NOT NULL,
  country_code CHAR(2) NOT NULL,
  status ENUM('new','paid','shipped','cancelled') NOT NULL DEFAULT 'new',
  total DECIMAL(12,2) NOT NULL DEFAULT 0.00,
  note TEXT NULL,
  attributes JSON NULL,
  created_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  updated_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
  PRIMARY KEY (id),
  KEY idx_orders_updated_at (updated_at),
  KEY idx_orders_country (country_code)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE order_items (
  order_id BIGINT UNSIGNED NOT NULL,
  line_no SMALLINT UNSIGNED NOT NULL,
  sku VARCHAR(32) NOT NULL,
  quantity INT NOT NULL,
  unit_price DECIMAL(10,2) NOT NULL,
  updated_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
  PRIMARY KEY (order_id, line_no),
  KEY idx_order_items_updated_at (updated_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

INSERT INTO countries (code, name, continent, population) VALUES
  ('AR', 'Argentina', 'Americas', 45800000),
  ('AU', 'Australia', 'Oceania', 26000000),
  ('BR', 'Brasil', 'Americas', 203000000),
  ('CI', 'Côte d''Ivoire', 'Africa', 28900000),
  ('DE', 'Deutschland', 'Europe', 84400000),
  ('ES', 'España', 'Europe', 48300000),
  ('FR', 'France', 'Europe', 68200000),
  ('JP', '日本', 'Asia', 124500000),
  ('NZ', 'Aotearoa New Zealand', 'Oceania', NULL),
  ('TR', 'Türkiye', 'Asia', 85300000);

-- 500 orders and 1 to 4 lines each, generated so the demo has something to sync.
INSERT INTO orders (id, customer_email, country_code, status, total, note, attributes, created_at)
WITH RECURSIVE seq (n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < 500)
SELECT
  n,
  CONCAT('customer', n, '@example.com'),
  ELT(1 + n MOD 10, 'AR', 'AU', 'BR', 'CI', 'DE', 'ES', 'FR', 'JP', 'NZ', 'TR'),
  ELT(1 + n MOD 4, 'new', 'paid', 'shipped', 'cancelled'),
  0.00,
  IF(n MOD 7 = 0, CONCAT('gift wrap – «', n, '»'), NULL),
  IF(n MOD 5 = 0, JSON_OBJECT('channel', 'web', 'coupon', CONCAT('C', n)), NULL),
  TIMESTAMP('2026-01-01 00:00:00') + INTERVAL n HOUR
FROM seq;

INSERT INTO order_items (order_id, line_no, sku, quantity, unit_price)
WITH RECURSIVE seq (n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < 500),
line_numbers (l) AS (SELECT 1 UNION ALL SELECT l + 1 FROM line_numbers WHERE l < 4)
SELECT n, l, CONCAT('SKU-', LPAD((n * 7 + l) MOD 1000, 4, '0')), 1 + (n + l) MOD 5,
       ROUND(1 + ((n * 13 + l * 17) MOD 9999) / 100, 2)
FROM seq JOIN line_numbers ON l <= 1 + n MOD 4;

UPDATE orders o
JOIN (SELECT order_id, SUM(quantity * unit_price) AS total FROM order_items GROUP BY order_id) t
  ON t.order_id = o.id
SET o.total = t.total;
