from django.conf import settings
from django.db import models
from django.db.models import F, Q


class Tournament(models.Model):
    class Status(models.TextChoices):
        UPCOMING = "upcoming"
        REGISTRATION = "registration"
        ONGOING = "ongoing"
        COMPLETED = "completed"
        CANCELLED = "cancelled"

    name = models.CharField(max_length=200)
    game = models.CharField(max_length=50, db_index=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.UPCOMING)
    season = models.PositiveSmallIntegerField(null=True, blank=True)
    starts_at = models.DateTimeField(null=True, blank=True)
    # Natural key of an imported tournament (ATP tourney_id); lets an import run twice without duplicating.
    external_id = models.CharField(max_length=64, null=True, blank=True, unique=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)

    def __str__(self) -> str:
        return self.name


class Registration(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"
        CONFIRMED = "confirmed"
        CANCELLED = "cancelled"
        NO_SHOW = "no_show"

    tournament = models.ForeignKey(Tournament, on_delete=models.CASCADE, related_name="registrations")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="registrations"
    )
    team = models.ForeignKey(
        "teams.Team", null=True, blank=True, on_delete=models.CASCADE, related_name="registrations"
    )
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    checked_in = models.BooleanField(default=False)
    checked_in_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=(Q(user__isnull=False) & Q(team__isnull=True))
                | (Q(user__isnull=True) & Q(team__isnull=False)),
                name="registration_exactly_one_entrant",
                violation_error_message="A registration has exactly one of user or team.",
            ),
            models.UniqueConstraint(
                fields=["tournament", "user"], condition=Q(user__isnull=False), name="registration_unique_user"
            ),
            models.UniqueConstraint(
                fields=["tournament", "team"], condition=Q(team__isnull=False), name="registration_unique_team"
            ),
        ]
        indexes = [models.Index(fields=["user", "tournament"], name="registration_user_idx")]

    def __str__(self) -> str:
        return f"{self.tournament_id}: {'user ' + str(self.user_id) if self.user_id else 'team ' + str(self.team_id)}"


class Match(models.Model):
    class State(models.TextChoices):
        SCHEDULED = "scheduled"
        LIVE = "live"
        COMPLETED = "completed"
        FORFEIT = "forfeit"
        DISPUTED = "disputed"
        CANCELLED = "cancelled"

    tournament = models.ForeignKey(Tournament, on_delete=models.CASCADE, related_name="matches")
    round = models.CharField(max_length=10)
    match_num = models.PositiveIntegerField(null=True, blank=True)
    participant1 = models.ForeignKey(Registration, on_delete=models.CASCADE, related_name="+")
    participant2 = models.ForeignKey(Registration, on_delete=models.CASCADE, related_name="+")
    winner = models.ForeignKey(Registration, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    loser = models.ForeignKey(Registration, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    state = models.CharField(max_length=20, choices=State.choices, default=State.SCHEDULED)
    score = models.CharField(max_length=100, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)

    class Meta:
        verbose_name_plural = "matches"
        constraints = [
            models.CheckConstraint(
                condition=~Q(participant1=F("participant2")),
                name="match_distinct_participants",
                violation_error_message="A match needs two different participants.",
            ),
            models.CheckConstraint(
                condition=Q(winner__isnull=True) | Q(winner=F("participant1")) | Q(winner=F("participant2")),
                name="match_winner_is_participant",
                violation_error_message="The winner must be one of the participants.",
            ),
            models.CheckConstraint(
                condition=Q(loser__isnull=True) | Q(loser=F("participant1")) | Q(loser=F("participant2")),
                name="match_loser_is_participant",
                violation_error_message="The loser must be one of the participants.",
            ),
            models.CheckConstraint(
                condition=Q(winner__isnull=True) | Q(loser__isnull=True) | ~Q(winner=F("loser")),
                name="match_winner_not_loser",
                violation_error_message="Winner and loser must differ.",
            ),
            models.CheckConstraint(
                condition=~Q(state="completed") | (Q(winner__isnull=False) & Q(loser__isnull=False)),
                name="match_completed_has_outcome",
                violation_error_message="A completed match has a winner and a loser.",
            ),
            models.UniqueConstraint(
                fields=["tournament", "match_num"], condition=Q(match_num__isnull=False), name="match_unique_num"
            ),
        ]
        indexes = [models.Index(fields=["tournament", "round"], name="match_tournament_round_idx")]

    def __str__(self) -> str:
        return f"{self.tournament_id} {self.round} #{self.pk}"


class TournamentResult(models.Model):
    tournament = models.OneToOneField(Tournament, on_delete=models.CASCADE, related_name="result")
    winner = models.ForeignKey(Registration, on_delete=models.CASCADE, related_name="+")
    runner_up = models.ForeignKey(Registration, on_delete=models.CASCADE, related_name="+")
    third_place = models.ForeignKey(Registration, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    fourth_place = models.ForeignKey(Registration, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=~Q(winner=F("runner_up")),
                name="result_winner_not_runner_up",
                violation_error_message="Winner and runner-up must differ.",
            ),
        ]

    def __str__(self) -> str:
        return f"result of {self.tournament_id}"
