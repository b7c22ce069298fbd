CREATE TABLE `change_counters` (
	`name` varchar(32) NOT NULL,
	`value` bigint unsigned NOT NULL,
	CONSTRAINT `change_counters_name` PRIMARY KEY(`name`)
);
--> statement-breakpoint
ALTER TABLE `users` ADD `session_generation` int unsigned DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `sessions` ADD `generation` int unsigned DEFAULT 0 NOT NULL;