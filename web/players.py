"""A player named in a URL or a query parameter: a public ID (any letter case), a numeric user id (API) or a
username (pages). One lookup, the same 404 for unknown, malformed and erased."""

from __future__ import annotations

from activity.selectors.errors import SubjectNotFound
from activity.selectors.profiles import is_possible_username, profile_by_id, profile_by_username
from esports.profiles.public_ids import looks_like_public_id
from esports.profiles.selectors import user_id_for_public_id


def player_by_reference(reference: str, viewer, *, usernames: bool = True, with_counts: bool = False):
    """The profile `reference` names; raises SubjectNotFound."""
    reference = (reference or "").strip()
    if looks_like_public_id(reference):
        user_id = user_id_for_public_id(reference)
        if user_id is None:
            raise SubjectNotFound("No such player.")
        return profile_by_id(user_id, viewer, with_counts=with_counts)
    if not usernames and reference.isascii() and reference.isdigit() and len(reference) <= 18 and reference[0] != "0":
        return profile_by_id(int(reference), viewer, with_counts=with_counts)
    if usernames and is_possible_username(reference):
        return profile_by_username(reference, viewer, with_counts=with_counts)
    raise SubjectNotFound("No such player.")


def player_name(profile) -> str:
    return profile.display_name or profile.user.get_username()
