CREATE TABLE `security_events` (
	`id` bigint unsigned AUTO_INCREMENT NOT NULL,
	`type` varchar(40) NOT NULL,
	`occurred_at` datetime(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
	`actor_id` bigint unsigned,
	`subject_user_id` bigint unsigned,
	`session_id` varchar(36),
	`ip` varchar(45),
	`user_agent` varchar(255),
	`request_id` varchar(64),
	`details` text NOT NULL,
	`aggregate_key` varchar(96),
	`count` int unsigned NOT NULL DEFAULT 1,
	CONSTRAINT `security_events_id` PRIMARY KEY(`id`),
	CONSTRAINT `security_events_aggregate_key_unique` UNIQUE(`aggregate_key`)
);
--> statement-breakpoint
CREATE TABLE `outbox` (
	`id` bigint unsigned AUTO_INCREMENT NOT NULL,
	`kind` enum('password_reset','email_verification','webhook') NOT NULL,
	`order_key` varchar(40),
	`user_id` bigint unsigned,
	`payload` text,
	`state` enum('pending','sent','skipped','dead') NOT NULL DEFAULT 'pending',
	`attempts` int unsigned NOT NULL DEFAULT 0,
	`created_at` datetime(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
	`available_at` datetime(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
	`claim` varchar(32),
	`finished_at` datetime(3),
	`last_error` varchar(200),
	CONSTRAINT `outbox_id` PRIMARY KEY(`id`)
);
--> statement-breakpoint
CREATE INDEX `security_events_subject_id_idx` ON `security_events` (`subject_user_id`,`id`);--> statement-breakpoint
CREATE INDEX `security_events_type_id_idx` ON `security_events` (`type`,`id`);--> statement-breakpoint
CREATE INDEX `security_events_subject_type_id_idx` ON `security_events` (`subject_user_id`,`type`,`id`);--> statement-breakpoint
CREATE INDEX `security_events_occurred_at_idx` ON `security_events` (`occurred_at`);--> statement-breakpoint
CREATE INDEX `outbox_state_available_at_idx` ON `outbox` (`state`,`available_at`);--> statement-breakpoint
CREATE INDEX `outbox_order_key_state_id_idx` ON `outbox` (`order_key`,`state`,`id`);--> statement-breakpoint
CREATE INDEX `outbox_finished_at_idx` ON `outbox` (`finished_at`);