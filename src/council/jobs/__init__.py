"""Operations around the learning pipeline: the leader lock, the schedule, notifications, run records."""
