-- The aurora monolith's schema, as the application has it today.
-- Foreign keys carry the ON DELETE / ON UPDATE actions the application relies on; their
-- effects on child rows are NOT written to a ROW binlog, so aurora-sync's mapping repeats them.

CREATE TABLE IF NOT EXISTS users (
    id              INT UNSIGNED NOT NULL AUTO_INCREMENT,
    email           VARCHAR(255) NOT NULL,
    password_hash   VARCHAR(255) NOT NULL,
    name            VARCHAR(255) NOT NULL,
    last_login_at   DATETIME NULL,
    created_at      TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at      TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
    PRIMARY KEY (id),
    UNIQUE KEY uq_users_email (email)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS semesters (
    id              INT UNSIGNED NOT NULL AUTO_INCREMENT,
    user_id         INT UNSIGNED NOT NULL,
    name            VARCHAR(100) NOT NULL,
    start_date      DATE NULL,
    end_date        DATE NULL,
    is_current      TINYINT(1) NOT NULL DEFAULT 0,
    PRIMARY KEY (id),
    KEY idx_semesters_user (user_id),
    CONSTRAINT fk_semesters_user FOREIGN KEY (user_id) REFERENCES users (id)
        ON DELETE CASCADE ON UPDATE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS subjects (
    id              INT UNSIGNED NOT NULL AUTO_INCREMENT,
    semester_id     INT UNSIGNED NOT NULL,
    name            VARCHAR(255) NOT NULL,
    credits         TINYINT UNSIGNED NOT NULL DEFAULT 0,
    color           CHAR(7) NULL,
    teacher         VARCHAR(255) NULL,
    PRIMARY KEY (id),
    KEY idx_subjects_semester (semester_id),
    CONSTRAINT fk_subjects_semester FOREIGN KEY (semester_id) REFERENCES semesters (id)
        ON DELETE CASCADE ON UPDATE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS syllabus (
    id              INT UNSIGNED NOT NULL AUTO_INCREMENT,
    subject_id      INT UNSIGNED NOT NULL,
    title           VARCHAR(255) NOT NULL,
    content         MEDIUMTEXT NULL,
    file_url        VARCHAR(2048) NULL,
    created_at      DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    updated_at      DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
    PRIMARY KEY (id),
    KEY idx_syllabus_subject (subject_id),
    CONSTRAINT fk_syllabus_subject FOREIGN KEY (subject_id) REFERENCES subjects (id)
        ON DELETE CASCADE ON UPDATE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS repositories (
    id              INT UNSIGNED NOT NULL AUTO_INCREMENT,
    user_id         INT UNSIGNED NOT NULL,
    subject_id      INT UNSIGNED NULL,
    name            VARCHAR(255) NOT NULL,
    url             VARCHAR(1024) NOT NULL,
    provider        ENUM('github', 'gitlab', 'bitbucket', 'other') NOT NULL DEFAULT 'github',
    is_private      TINYINT(1) NOT NULL DEFAULT 0,
    stars           INT UNSIGNED NOT NULL DEFAULT 0,
    created_at      DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (id),
    KEY idx_repositories_user (user_id),
    KEY idx_repositories_subject (subject_id),
    CONSTRAINT fk_repositories_user FOREIGN KEY (user_id) REFERENCES users (id)
        ON DELETE CASCADE ON UPDATE CASCADE,
    CONSTRAINT fk_repositories_subject FOREIGN KEY (subject_id) REFERENCES subjects (id)
        ON DELETE SET NULL ON UPDATE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
