from django.db.models.signals import post_save
from django.dispatch import receiver

from esports.economy.models import DeltaCrownWallet
from esports.profiles.models import UserProfile


@receiver(post_save, sender=UserProfile, dispatch_uid="economy.create_wallet_for_new_profile")
def create_wallet_for_new_profile(sender, instance, created, raw=False, **kwargs) -> None:
    if created and not raw:
        DeltaCrownWallet.objects.get_or_create(profile=instance)
