//! PLACEHOLDER: the cron field engine shared by `cron` and `crontab`.
