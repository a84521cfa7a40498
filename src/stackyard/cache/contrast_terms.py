"""The contrast guard's hand-written word lists (:mod:`stackyard.cache.contrast`).

Each group lists *senses*: words of one sense say the same thing (a known paraphrase), words
of two senses of one group contrast (an antonym, or a sibling term: two members of one kind).
Units and dates are groups too, but any unit or date word left unaligned is a difference, even
with nothing in its place ("open on Sunday" against "open"). Entries are written as people
type them; the guard stems them as it stems questions.
"""

from __future__ import annotations

#: Words that carry no content of their own: left out before the two questions are aligned.
_FUNCTION_WORDS = """
    a an the i me my mine myself you your yours yourself we us our ours they them their theirs
    he him his she her it its this that these those there here is am are was were be been being
    do does did doing done have has had having can could will would shall should may might must
    of in at by for with about as and or but if so then what which how whom whose also too very
    just please any some anyone someone something anything way possible able exactly really
    still already yet ever again i'm i've i'd i'll you're it's there's what's let like want
    would've need go going get got getting tell know wondering happen happens
"""
FUNCTION_WORDS = frozenset(_FUNCTION_WORDS.split())
#: Words that mark who does what to whom: a question that swaps what stands on their two
#: sides asks the opposite ("from savings to checking", "cheaper than renting").
ROLE_MARKERS = frozenset({"to", "from", "than", "vs", "versus", "into", "toward", "towards"})
NEGATIONS = frozenset(
    {"not", "no", "never", "none", "nobody", "nothing", "neither", "nor", "cannot", "without"}
)
#: Prefixes that negate the word after them ("refundable" against "non-refundable").
NEGATING_PREFIXES = ("non", "un", "in", "im", "ir", "il", "dis")
#: Two-word spellings of one word, joined before alignment.
COMPOUNDS = {
    ("e", "mail"): "email",
    ("email", "address"): "email",
    ("phone", "number"): "phone",
    ("telephone", "number"): "phone",
    ("mobile", "number"): "phone",
    ("user", "name"): "username",
    ("log", "in"): "login",
    ("sign", "in"): "login",
    ("log", "on"): "login",
    ("log", "out"): "logout",
    ("sign", "out"): "logout",
    ("sign", "up"): "signup",
    ("check", "in"): "checkin",
    ("check", "out"): "checkout",
    ("carry", "on"): "carryon",
    ("same", "day"): "sameday",
    ("next", "day"): "nextday",
    ("pick", "up"): "pickup",
    ("drop", "off"): "dropoff",
    ("turn", "on"): "enable",
    ("switch", "on"): "enable",
    ("turn", "off"): "disable",
    ("switch", "off"): "disable",
    ("credit", "card"): "creditcard",
    ("debit", "card"): "debitcard",
    ("gift", "card"): "giftcard",
    ("money", "back"): "refund",
    ("km", "h"): "kmh",
}

#: Antonyms: (sense, sense) or more, each sense a set of words that mean the same.
ANTONYMS: list[list[set[str]]] = [
    [
        {"arrive", "arrival", "arriving", "land", "landing", "inbound"},
        {"depart", "departure", "departing", "leave", "takeoff", "outbound"},
    ],
    [{"before", "prior"}, {"after"}],
    [{"early", "earlier", "earliest"}, {"late", "later", "latest"}],
    [
        {"include", "included", "including", "inclusive"},
        {"exclude", "excluded", "excluding", "exclusive"},
    ],
    [
        {"increase", "raise", "higher", "more", "above", "over", "maximum", "max", "most", "up"},
        {
            "decrease",
            "reduce",
            "lower",
            "less",
            "fewer",
            "below",
            "under",
            "minimum",
            "min",
            "least",
            "down",
        },
    ],
    [{"open", "opening", "opens"}, {"close", "closing", "closes", "closed", "shut"}],
    [{"enable", "activate", "on"}, {"disable", "deactivate", "off"}],
    [{"add", "insert", "invite"}, {"remove", "delete", "drop", "kick"}],
    [{"upgrade"}, {"downgrade"}],
    [{"subscribe", "signup", "join", "enroll", "enrol"}, {"unsubscribe", "optout", "leave"}],
    [{"lock", "freeze", "block"}, {"unlock", "unfreeze", "unblock"}],
    [{"import"}, {"export"}],
    [{"upload"}, {"download"}],
    [{"archive"}, {"restore", "unarchive"}],
    [{"start", "begin", "beginning", "starting"}, {"end", "finish", "stop", "ending"}],
    [{"deposit"}, {"withdraw", "withdrawal"}],
    [{"login"}, {"logout"}],
    [{"pickup", "collect", "collection"}, {"dropoff"}],
    [{"accept", "approve", "allow"}, {"decline", "reject", "refuse", "deny", "block"}],
    [{"buy", "purchase", "bought", "purchased"}, {"sell", "sold"}],
    [{"rent", "renting", "lease", "hire"}, {"buy", "buying", "purchase", "own"}],
    [{"send", "sent"}, {"receive", "received"}],
    [{"credit"}, {"debit"}],
    [{"charge", "bill", "billed", "charged"}, {"refund", "refunded", "reimburse"}],
    [{"old", "previous", "former"}, {"new"}],
    [{"first"}, {"last", "final"}],
    [{"online"}, {"offline"}],
    [{"free", "complimentary"}, {"paid"}],
    [{"public"}, {"private"}],
    [{"domestic"}, {"international", "abroad"}],
    [{"full"}, {"partial"}],
    [{"hot", "warm"}, {"cold", "cool"}],
    [{"twice", "double"}, {"half"}],
    [{"win"}, {"lose"}],
    [{"true"}, {"false"}],
    [{"inside", "indoor"}, {"out", "outside", "outdoor"}],
]

#: Sibling terms: members of one kind; each set is one sense.
SIBLINGS: list[list[set[str]]] = [
    [
        {"email", "mail"},
        {"phone", "telephone", "call", "mobile", "landline"},
        {"chat"},
        {"text", "sms"},
        {"letter", "post", "postal"},
        {"fax"},
    ],
    [
        {"morning", "am"},
        {"afternoon"},
        {"evening", "pm"},
        {"night", "overnight", "tonight"},
        {"noon", "midday"},
        {"midnight"},
    ],
    [{"refund", "reimbursement"}, {"exchange", "swap"}, {"replacement"}, {"repair"}, {"voucher"}],
    [
        {"creditcard", "card"},
        {"debitcard"},
        {"paypal"},
        {"cash"},
        {"cheque", "check"},
        {"wire", "bank"},
        {"bitcoin", "crypto"},
        {"giftcard"},
        {"venmo"},
        {"zelle"},
    ],
    [{"password", "passcode", "passphrase"}, {"pin"}, {"username", "handle"}, {"email"}, {"name"}],
    [
        {"standard", "regular", "normal"},
        {"express", "expedited", "priority", "rush"},
        {"nextday"},
        {"sameday"},
    ],
    [{"billing"}, {"shipping", "delivery", "postal"}, {"home"}, {"work", "office"}],
    [{"checked", "hold"}, {"carryon", "cabin", "hand"}],
    [{"window"}, {"aisle"}, {"middle"}],
    [
        {"hotel", "room", "accommodation"},
        {"car", "vehicle"},
        {"flight", "plane"},
        {"train", "rail"},
        {"bus", "coach", "shuttle"},
        {"ferry", "boat"},
        {"bike", "bicycle"},
    ],
    [{"single"}, {"double"}, {"twin"}, {"triple"}, {"suite"}, {"family"}],
    [{"breakfast"}, {"lunch"}, {"dinner", "supper"}, {"brunch"}],
    [
        {"savings", "saving"},
        {"checking", "current"},
        {"business", "corporate"},
        {"personal"},
        {"joint"},
        {"student"},
    ],
    [{"economy"}, {"business"}, {"first"}, {"premium"}],
    [{"android"}, {"ios", "iphone"}, {"windows"}, {"mac", "macos"}, {"linux"}, {"web", "browser"}],
    [
        {"laptop", "notebook"},
        {"desktop", "pc", "computer"},
        {"tablet", "ipad"},
        {"phone", "smartphone", "mobile"},
        {"watch"},
        {"tv", "television"},
        {"printer"},
        {"router", "modem"},
    ],
    [{"invoice", "bill"}, {"receipt"}, {"statement"}, {"quote", "estimate"}],
    [{"lost", "missing"}, {"damaged", "broken", "faulty", "defective"}, {"stolen"}, {"delayed"}],
    [
        {"shoe", "shoes", "sneaker", "boot", "boots"},
        {"jacket", "coat"},
        {"shirt"},
        {"dress"},
        {"trousers", "pants", "jeans"},
        {"hat"},
        {"bag"},
    ],
    [{"small"}, {"medium"}, {"large", "big"}, {"xl"}],
    [
        {"red"},
        {"blue"},
        {"green"},
        {"black"},
        {"white"},
        {"yellow"},
        {"pink"},
        {"grey", "gray"},
        {"purple"},
        {"orange"},
        {"brown"},
    ],
    [{"north", "northern"}, {"south", "southern"}, {"east", "eastern"}, {"west", "western"}],
    [{"upstairs"}, {"downstairs"}, {"basement"}],
    [{"left"}, {"right"}],
    [{"front"}, {"rear", "back"}],
    [{"basic", "starter"}, {"pro", "plus"}, {"team"}, {"enterprise"}, {"family"}],
    [{"adult"}, {"child", "children", "kid", "kids"}, {"infant", "baby"}, {"senior"}, {"student"}],
    [{"dog", "puppy"}, {"cat", "kitten"}, {"bird"}, {"rabbit"}],
    [{"when"}, {"where"}, {"why"}, {"who"}],
    [{"minimum"}, {"average"}, {"maximum"}],
    [{"buy", "purchase"}, {"rent", "lease"}, {"borrow", "loan"}],
    [{"pool"}, {"gym"}, {"spa"}, {"sauna"}],
    [{"wifi", "internet"}, {"tv", "cable"}, {"electricity", "power"}, {"gas"}, {"water"}],
]

#: Units and currencies: a unit left unaligned is a difference.
UNITS: list[list[set[str]]] = [
    [
        {"$", "dollar", "dollars", "usd", "buck", "bucks"},
        {"€", "euro", "euros", "eur"},
        {"£", "pound", "pounds", "gbp", "quid"},
        {"¥", "yen", "jpy"},
        {"cent", "cents"},
        {"penny", "pence"},
        {"rupee", "rupees", "inr"},
        {"franc", "francs"},
        {"peso", "pesos"},
    ],
    [
        {"kg", "kilogram", "kilograms", "kilo", "kilos"},
        {"lb", "lbs"},
        {"gram", "grams"},
        {"oz", "ounce", "ounces"},
        {"ton", "tons", "tonne", "tonnes"},
    ],
    [
        {"mile", "miles"},
        {"km", "kilometre", "kilometres", "kilometer", "kilometers"},
        {"metre", "metres", "meter", "meters"},
        {"ft", "foot", "feet"},
        {"inch", "inches"},
        {"cm", "centimetre", "centimeter"},
        {"mm", "millimetre", "millimeter"},
        {"yard", "yards"},
    ],
    [
        {"liter", "litre", "liters", "litres"},
        {"ml", "millilitre", "milliliter"},
        {"gallon", "gallons"},
        {"pint", "pints"},
        {"cup", "cups"},
        {"tablespoon", "tbsp"},
        {"teaspoon", "tsp"},
    ],
    [
        {"gb", "gigabyte", "gigabytes", "gig", "gigs"},
        {"mb", "megabyte", "megabytes"},
        {"kb", "kilobyte", "kilobytes"},
        {"tb", "terabyte", "terabytes"},
        {"megabit", "megabits", "mbps"},
        {"gigabit", "gigabits", "gbps"},
    ],
    [{"celsius", "centigrade"}, {"fahrenheit"}, {"kelvin"}],
    [{"mph"}, {"kmh", "kph"}],
    [
        {"hour", "hours", "hourly", "hr", "hrs"},
        {"minute", "minutes", "min", "mins"},
        {"day", "days", "daily"},
        {"week", "weeks", "weekly"},
        {"fortnight", "biweekly"},
        {"month", "months", "monthly"},
        {"quarter", "quarterly"},
        {"year", "years", "yearly", "annual", "annually", "yr"},
        {"decade"},
    ],
    [{"percent", "%", "percentage"}],
    [{"watt", "watts"}, {"volt", "volts"}, {"amp", "amps"}],
]

#: Dates and times of the calendar: a date left unaligned is a difference.
DATES: list[list[set[str]]] = [
    [
        {"monday", "mon"},
        {"tuesday", "tue", "tues"},
        {"wednesday", "wed"},
        {"thursday", "thu", "thurs"},
        {"friday", "fri"},
        {"saturday", "sat"},
        {"sunday", "sun"},
        {"weekend", "weekends"},
        {"weekday", "weekdays"},
        {"holiday", "holidays"},
    ],
    [
        {"january", "jan"},
        {"february", "feb"},
        {"march", "mar"},
        {"april", "apr"},
        {"may"},
        {"june", "jun"},
        {"july", "jul"},
        {"august", "aug"},
        {"september", "sept", "sep"},
        {"october", "oct"},
        {"november", "nov"},
        {"december", "dec"},
    ],
    [{"spring"}, {"summer"}, {"autumn", "fall"}, {"winter"}],
    [{"today"}, {"tomorrow"}, {"yesterday"}, {"tonight"}],
    [{"next", "upcoming"}, {"last", "previous", "recent", "latest", "past"}],
    [{"christmas", "xmas"}, {"easter"}, {"thanksgiving"}, {"halloween"}, {"valentine"}, {"eve"}],
]

#: Word pairs that say the same thing, beyond the senses above and what the training pairs
#: taught (:mod:`stackyard.cache.synonyms`).
PARAPHRASES: list[set[str]] = [
    {"buy", "purchase", "order"},
    {"delete", "remove", "close", "erase"},
    {"change", "update", "modify", "edit", "alter"},
    {"cancel", "stop", "end", "quit", "terminate"},
    {"contact", "reach", "call"},
    {"get", "receive", "obtain"},
    {"package", "parcel", "shipment"},
    {"shipping", "delivery", "postage"},
    {"charge", "bill"},
    {"reset", "recover", "retrieve"},
    {"create", "make", "open", "register"},
    {"login", "signin", "access"},
    {"item", "product"},
    {"data", "information", "info"},
    {"luggage", "baggage", "bag"},
    {"wifi", "internet"},
]
