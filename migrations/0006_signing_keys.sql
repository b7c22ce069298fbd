CREATE TABLE `signing_keys` (
	`kid` varchar(64) NOT NULL,
	`algorithm` varchar(16) NOT NULL,
	`generation` int unsigned NOT NULL,
	`public_jwk` text NOT NULL,
	`private_key` text NOT NULL,
	`created_at` datetime(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
	`activates_at` datetime(3) NOT NULL,
	`retires_at` datetime(3),
	`revoked_at` datetime(3),
	`updated_at` datetime(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
	CONSTRAINT `signing_keys_kid` PRIMARY KEY(`kid`),
	CONSTRAINT `signing_keys_algorithm_generation_idx` UNIQUE(`algorithm`,`generation`)
);
--> statement-breakpoint
CREATE INDEX `signing_keys_updated_at_idx` ON `signing_keys` (`updated_at`);