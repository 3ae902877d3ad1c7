"""Team campaigns: hand-out of candidate pages, consensus, agreement and progress.

- :mod:`server.teams.rules`: the campaign settings that steer them, with their defaults;
- :mod:`server.teams.handout`: candidate pages handed out so that labelers do not overlap;
- :mod:`server.teams.consensus`: one label per object derived (in SQL) from everyone's;
- :mod:`server.teams.agreement`: Fleiss' and Cohen's kappa;
- :mod:`server.teams.progress`: what each labeler has done, and how fast.
"""
