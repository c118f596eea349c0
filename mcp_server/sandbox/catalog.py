"""The sandbox's made-up catalog: services, countries, prices and stock, fixed by a seed.

Deterministic on purpose, so tests and benchmarks see the same numbers every run. For every
service the cheapest country has no stock (``count: 0``): a client that trusts ``/price`` alone
picks a country it cannot buy from, which is the trap ``find_cheapest`` must avoid.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

# (service_id, service_name)
SERVICES: tuple[tuple[str, str], ...] = (
    ("whatsapp", "WhatsApp"),
    ("telegram", "Telegram"),
    ("google", "Google"),
    ("facebook", "Facebook"),
    ("instagram", "Instagram"),
    ("tiktok", "TikTok"),
    ("twitter", "Twitter / X"),
    ("discord", "Discord"),
    ("microsoft", "Microsoft"),
    ("openai", "OpenAI"),
    ("amazon", "Amazon"),
    ("uber", "Uber"),
    ("signal", "Signal"),
    ("tinder", "Tinder"),
    ("paypal", "PayPal"),
)

# (country_id, country_name, dial code)
COUNTRIES: tuple[tuple[str, str, str], ...] = (
    ("US", "United States", "1"),
    ("GB", "United Kingdom", "44"),
    ("DE", "Germany", "49"),
    ("FR", "France", "33"),
    ("NL", "Netherlands", "31"),
    ("ES", "Spain", "34"),
    ("IT", "Italy", "39"),
    ("PL", "Poland", "48"),
    ("SE", "Sweden", "46"),
    ("FI", "Finland", "358"),
    ("EE", "Estonia", "372"),
    ("LT", "Lithuania", "370"),
    ("PT", "Portugal", "351"),
    ("CA", "Canada", "1"),
    ("BR", "Brazil", "55"),
    ("MX", "Mexico", "52"),
    ("IN", "India", "91"),
    ("ID", "Indonesia", "62"),
    ("PH", "Philippines", "63"),
    ("VN", "Vietnam", "84"),
    ("TH", "Thailand", "66"),
    ("KE", "Kenya", "254"),
    ("NG", "Nigeria", "234"),
    ("ZA", "South Africa", "27"),
)

OFFER_RATE = 0.85  # share of (service, country) pairs on sale; the rest answer /price with 404
OUT_OF_STOCK_PER_SERVICE = 3  # countries with count 0 per service, the cheapest among them


@dataclass
class Offer:
    price: float
    count: int


@dataclass(frozen=True)
class Catalog:
    services: dict[str, str]  # id -> name
    countries: dict[str, tuple[str, str]]  # id -> (name, dial code)
    offers: dict[tuple[str, str], Offer]  # (service id, country id) -> offer

    def service_id(self, value: str) -> str | None:
        """Canonical id for a user-given service id (case-insensitive), or None."""
        wanted = value.strip().lower()
        return wanted if wanted in self.services else None

    def country_id(self, value: str) -> str | None:
        """Canonical id for a user-given country id (case-insensitive), or None."""
        wanted = value.strip().upper()
        return wanted if wanted in self.countries else None


def build_catalog(seed: int) -> Catalog:
    """The catalog for ``seed``: same seed, same prices and stock."""
    rng = random.Random(f"vsms-sandbox-catalog-{seed}")
    offers: dict[tuple[str, str], Offer] = {}
    for service_id, _ in SERVICES:
        offered = [c for c, _, _ in COUNTRIES if rng.random() < OFFER_RATE]
        for country_id in offered:
            price = round(rng.uniform(0.08, 2.5), 2)
            offers[(service_id, country_id)] = Offer(price=price, count=rng.randint(5, 900))
        # Out of stock: the cheapest offer plus a few others chosen by the seed.
        by_price = sorted(offered, key=lambda c, s=service_id: offers[(s, c)].price)
        empty = {by_price[0], *rng.sample(by_price[1:], OUT_OF_STOCK_PER_SERVICE - 1)}
        for country_id in empty:
            offers[(service_id, country_id)].count = 0
    return Catalog(
        services=dict(SERVICES),
        countries={c: (name, dial) for c, name, dial in COUNTRIES},
        offers=offers,
    )
