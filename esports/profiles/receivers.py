from django.conf import settings
from django.db.models.signals import post_save
from django.dispatch import receiver

from esports.profiles.models import UserProfile


@receiver(post_save, sender=settings.AUTH_USER_MODEL, dispatch_uid="profiles.create_profile_for_new_user")
def create_profile_for_new_user(sender, instance, created, raw=False, **kwargs) -> None:
    # Every account has exactly one profile from the moment it exists (the wallet follows the profile).
    if created and not raw:
        name = instance.get_full_name() or instance.get_username()
        UserProfile.objects.get_or_create(user=instance, defaults={"display_name": name[:150]})
