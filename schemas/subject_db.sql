-- subject_db: the subject service's subjects and their metadata.

CREATE TABLE IF NOT EXISTS subjects (
    id              INT UNSIGNED NOT NULL,
    semester_id     INT UNSIGNED NOT NULL,
    user_id         INT UNSIGNED NOT NULL,
    name            VARCHAR(255) NOT NULL,
    code            VARCHAR(32) NULL,
    description     TEXT NULL,
    prerequisites   JSON NULL,
    status          ENUM('active', 'archived') NOT NULL DEFAULT 'active',
    credits         TINYINT UNSIGNED NOT NULL DEFAULT 0,
    color           CHAR(7) NULL,
    teacher         VARCHAR(255) NULL,
    created_at      DATETIME NOT NULL,
    updated_at      DATETIME NOT NULL,
    PRIMARY KEY (id),
    KEY idx_subjects_semester (semester_id),
    KEY idx_subjects_user (user_id),
    KEY idx_subjects_code (code)
) DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS subject_metadata (
    id              BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    subject_id      INT UNSIGNED NOT NULL,
    meta_key        VARCHAR(128) NOT NULL,
    meta_value      TEXT NULL,
    created_at      DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at      DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
    PRIMARY KEY (id),
    UNIQUE KEY uq_subject_metadata (subject_id, meta_key)
) DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
