"""Operations around the learning pipeline: leader lock, schedule, notifications, runs."""
