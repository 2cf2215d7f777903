"""Gift cards: prepaid balances that staff issue and buyers spend through the ``gift_card``
payment provider, never below zero.

Owns ``gift_card`` (the balance, kept by the database at or above zero; the code stored only
as a keyed hash, ``code_index``, with its last four characters) and ``gift_card_movement``
(the ledger: every issue, debit and credit, so that the movements of a card sum to its
balance). Publishes ``codes`` (making, normalising and indexing codes), ``service`` (staff
verbs; ``find_usable`` for a code; ``debit`` and ``credit``, each one conditional update and
one ledger row, idempotent on the payment or refund they serve) and ``routes`` (staff CRUD
and the public, rate-limited balance check). The payments room calls it from its
``gift_card`` provider; it knows nothing of payments or orders beyond their ids.

May import: ``emporium.accounts`` (guards, the vault's key ring), ``emporium.jobs`` (domain
events), ``emporium.audit`` (cards issued and disabled) and ``emporium.core``.
"""
