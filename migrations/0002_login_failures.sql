CREATE TABLE `login_failures` (
	`email` varchar(254) NOT NULL,
	`failures` int unsigned NOT NULL,
	`window_started_at` datetime(3) NOT NULL,
	`locked_until` datetime(3),
	CONSTRAINT `login_failures_email` PRIMARY KEY(`email`)
);
