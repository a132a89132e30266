"""Incident narratives: the free text a call handler and attending officer write.

Narratives are built from templates whose ``{slots}`` are filled from word lists, batched per
template with pyarrow so a million narratives take seconds. The wording is meant to make
screening hard: crimes told in the victim's words without naming the offence, non-crimes full
of crime words ("no offences disclosed"), abbreviations and typos, and details (a weapon, an
injury, entry to a home, force in a theft) that show when the recorded class is too low.

>>> import numpy as np
>>> from crimeaudit.model.codes import load_code_lists
>>> from crimeaudit.simulation.behaviour import OffenceBook
>>> book = OffenceBook(load_code_lists())
>>> text = write(np.random.default_rng(1), ["ASSAULT", "ASB"], np.array([0, 1]),
...              np.array([True, False]), np.array([book.index["8N"], -1]), book,
...              np.array([0.9, 0.5]))
>>> len(text), all(len(t) > 20 for t in text.to_pylist())
(2, True)
"""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from crimeaudit.simulation.behaviour import OffenceBook
from crimeaudit.simulation.scenario import NarrativeStyle

WORDS: dict[str, list[str]] = {
    "ip": [
        "IP",
        "IP",
        "the IP",
        "caller",
        "the caller",
        "informant",
        "complainant",
        "c/o",
        "victim",
        "the vic",
        "IP",
        "inf",
    ],
    "male": [
        "a male",
        "unknown male",
        "a man",
        "male",
        "2 males",
        "a lad",
        "a youth",
        "an older male",
        "a white male in his 20s",
        "an asian male",
        "a black male",
        "male wearing dark hoodie",
    ],
    "known": [
        "her ex partner",
        "his ex",
        "her partner",
        "the neighbour",
        "her brother",
        "a friend of his",
        "his flatmate",
        "her ex-boyfriend",
        "her husband",
        "his stepdad",
        "a work colleague",
        "the landlord",
    ],
    "when": [
        "earlier today",
        "last night",
        "about 20 mins ago",
        "at approx 2300hrs",
        "this morning",
        "yesterday evening",
        "at 0130hrs",
        "just now",
        "on saturday night",
        "around midnight",
        "approx 1hr ago",
        "last week",
    ],
    "place": [
        "outside the Co-op",
        "in the town centre",
        "at the bus station",
        "outside her address",
        "in the park",
        "near the school",
        "at the pub",
        "on the high st",
        "outside the kebab shop",
        "at the train station",
        "in the retail park car park",
        "at his home address",
        "on the estate",
        "outside the nightclub",
    ],
    "item": [
        "mobile phone",
        "iPhone",
        "purse",
        "wallet",
        "bank card",
        "push bike",
        "handbag",
        "laptop",
        "car keys",
        "cash",
        "jewellery",
        "watch",
        "tablet",
        "headphones",
    ],
    "goods": [
        "meat",
        "alcohol",
        "razor blades",
        "baby milk",
        "clothing",
        "perfume",
        "sweets",
        "coffee",
        "electrical items",
        "cheese",
        "washing powder",
    ],
    "weapon": [
        "a knife",
        "a kitchen knife",
        "a bottle",
        "a baseball bat",
        "a hammer",
        "a blade",
        "a screwdriver",
        "a glass",
        "a metal pole",
        "a machete",
    ],
    "injury": [
        "cut above eye",
        "bleeding from nose",
        "swollen cheek",
        "split lip",
        "bruising to both arms",
        "cut to head, paramedics attended",
        "black eye",
        "scratches to neck",
        "red marks and bruising to throat",
        "chipped tooth",
        "lump on back of head",
        "bloody nose",
    ],
    "no_injury": [
        "no injuries",
        "no visible injuries",
        "no marks seen",
        "no injuries seen",
        "no injuries reported",
        "did not require medical treatment",
        "no injury but shaken up",
    ],
    "gbh_injury": [
        "broken jaw",
        "stab wound to leg",
        "fractured cheekbone",
        "head injury, taken to hospital and kept in",
        "deep cut to arm needing surgery",
        "fractured eye socket",
        "knocked unconscious, in ICU",
        "puncture wound to back",
        "broken arm and ribs",
        "multiple stab wounds",
    ],
    "assault_act": [
        "punched",
        "headbutted",
        "kicked",
        "hit",
        "struck",
        "punched and kicked",
        "attacked",
        "went for",
        "battered",
        "lamped",
    ],
    "light_act": [
        "pushed",
        "slapped",
        "shoved",
        "grabbed",
        "spat at",
        "poked in the chest",
        "pushed into a wall",
        "tripped up",
        "grabbed hold of",
        "threw a drink over",
    ],
    "entry": [
        "rear door forced",
        "kitchen window smashed and entry gained",
        "front door kicked in, house ransacked",
        "got in through insecure back door",
        "patio door jemmied, drawers tipped out",
        "entry via open upstairs window",
        "back door lock snapped",
        "someone was inside the house while family asleep",
    ],
    "no_entry": [
        "marks to the door frame, no entry gained",
        "scratches around the lock",
        "window damaged but intact, no entry",
        "door handle broken, nobody got in",
        "attempt on the back door, didn't get in",
    ],
    "rob_force": [
        "pulled a knife and demanded",
        "punched him and took",
        "threatened to stab him unless he gave him",
        "pushed him to the ground and grabbed",
        "held a blade to him and took",
        "said he would hurt him and took",
        "pinned him against a wall and took",
        "threatened him with a bottle and took",
    ],
    "snatch": ["snatched", "grabbed", "took", "nicked", "swiped"],
    "quote": [
        '"why does this keep happening to me"',
        '"i just want to feel safe"',
        '"he said hed come back"',
        '"its not the first time"',
        '"he just went for me"',
        '"i didnt do anything to him"',
        '"im really scared"',
        '"i just want him to stop"',
        '"i dont want to make a fuss"',
        '"i want him done for it"',
        '"i dont want police involvement"',
        '"its happened before"',
        '"i thought he was going to kill me"',
        '"i just want it logged"',
        '"can someone come round"',
    ],
    "update": [
        "Officers attended.",
        "OIC spoke to IP.",
        "Words of advice given.",
        "CCTV enquiries to be made.",
        "PNC checks done.",
        "BWV on.",
        "IP happy with police action.",
        "Log updated.",
        "Attended by PCSO.",
        "Area search negative.",
        "Details obtained.",
        "Callback made to IP.",
        "Safeguarding discussed.",
        "Referral to partner agency.",
        "ofcrs on scene",
        "",
        "",
        "",
        "",
        "",
    ],
    "closer": [
        "Closed.",
        "Result: see closing code.",
        "IP given log number.",
        "Crime number to follow if required.",
        "Advised to call back if any further issues.",
        "Passed to day shift.",
        "NFA from control room.",
        "Log closed by supervisor.",
        "No further calls.",
        "",
        "",
        "",
        "",
        "",
        "",
    ],
    "opener": [
        "Caller (IP) states",
        "Call received from",
        "Female caller reports",
        "Male caller reports",
        "3rd party report:",
        "Rpt from",
        "Caller reports",
        "Call from",
        "RP states",
        "Report of",
        "Inf reports",
        "Caller states",
        "Received call:",
        "999 call:",
        "101 call -",
        "Online report:",
        "",
        "",
        "",
        "",
    ],
}

# Templates: {slot} draws from WORDS; plain text is kept. Crime stories are keyed by offence
# code; "vague" variants leave out the detail that fixes the class.
CRIME: dict[str, dict[str, list[str]]] = {
    "5D": {
        "clear": [
            "{ip} {assault_act} by {male} {place} using {weapon}, {gbh_injury}. Ambulance called.",
            "stabbing {place}. {ip} has {gbh_injury}. {male} made off",
            "{ip} was kicked repeatedly in the head while on the floor {place}, {gbh_injury}",
            "{ip} attacked by {known} with {weapon} at home address, {gbh_injury}. {quote}",
        ],
        "vague": [
            "{ip} assaulted {place}, taken to hospital, extent of injuries not known",
            "fight {place}, one male left on the floor, ambulance attended",
        ],
    },
    "8N": {
        "clear": [
            '{ip} states "he smacked me in the mouth", {injury}',
            "{quote} says {ip}. {known} hit her with his fist, {injury}, doesnt want to "
            "support a prosecution",
            "{ip} states {male} {assault_act} him {place} {when}, {injury}.",
            "{ip} {assault_act} by {known} during argument at home, {injury}. {quote}",
            "{quote} - {ip} says {known} {assault_act} her, {injury}",
            "{ip} jumped by {male} walking home {when}, {injury}",
            "{ip} says {known} grabbed her by the throat and squeezed, {injury}",
        ],
        "vague": [
            "{ip} says {male} {assault_act} him {place}, declined to be seen by paramedics",
            "{ip} and {known} had a scuffle, {ip} says face hurts",
        ],
    },
    "8P": {
        "clear": [
            "{ip} racially abused then {assault_act} by {male} {place}, {injury}",
            "{male} called {ip} a p*ki and {assault_act} him, {injury}",
        ],
        "vague": ["{ip} shouted at and {assault_act} by {male} {place}, language used"],
    },
    "105A": {
        "clear": [
            '"he shoved me into the door" {ip} states, {no_injury}',
            "{ip} says {known} {light_act} her, she initially said no offences but later "
            "disclosed it, {no_injury}",
            "{ip} {light_act} by {male} {place}, {no_injury}.",
            "{ip} states {known} {light_act} her during argument, {no_injury}. {quote}",
            "{quote} {ip} reports {known} {light_act} him {when}, {no_injury}",
            "{ip} {light_act} by customer at work, {no_injury}",
        ],
        "vague": [
            "{ip} says {known} put hands on her {when}",
            "pushing and shoving {place}, {ip} involved",
        ],
    },
    "105B": {
        "clear": [
            "{ip} {light_act} by {male} who made racist comments, {no_injury}",
            "{male} shouted racial abuse at {ip} and {light_act} her, {no_injury}",
        ],
        "vague": ["{ip} {light_act} by {male} {place}, {no_injury}"],
    },
    "8L": {
        "clear": [
            "{ip} receiving repeated unwanted calls and messages from {known}, asked them to stop",
            "{known} keeps turning up at {ip}'s work and shouting, been going on for weeks",
            "{ip} says {known} will not leave her alone, constant texts. {quote}",
        ],
        "vague": ["{ip} fed up with {known} contacting her"],
    },
    "8Q": {
        "clear": [
            "{known} has been following {ip} home from work for weeks, sits outside address in car",
            "{ip} says {known} turns up everywhere she goes, has tracked her phone. {quote}",
        ],
        "vague": ["{ip} keeps seeing {known} near her address"],
    },
    "8R": {
        "clear": [
            "{ip} received abusive and threatening messages on facebook from {known}",
            "{known} sent {ip} offensive voice notes saying she will regret it",
            "{ip} getting nasty messages from unknown number calling her names",
        ],
        "vague": ["{ip} reports messages from {known}, screenshots provided"],
    },
    "19C": {
        "clear": [
            "{ip} discloses that {known} had sex with her when she said no {when}. {quote}",
            "{ip} woke to find {male} having sex with her, she had been drinking, couldnt consent",
            "{ip} says she was held down by {known} and forced to have sex",
        ],
        "vague": ["{ip} says something happened with {known} at a party {when}, she is upset"],
    },
    "19D": {
        "clear": [
            "15yr old female discloses {known} had sex with her, she told him to stop",
            "school report: 14yr old girl says older male forced sex on her",
        ],
        "vague": ["concern for 15yr old female, something happened with an older male"],
    },
    "19F": {
        "clear": ["male {ip} says {male} forced him to have sex after a night out"],
        "vague": ["male {ip} reports unwanted sexual contact after a night out"],
    },
    "20A": {
        "clear": [
            "{ip} states {male} touched her bottom on the bus",
            "{male} groped {ip}'s breasts {place} and ran off",
            "{ip} says {known} put his hand up her skirt without consent. {quote}",
            "unknown male grabbed {ip} between the legs {place}",
        ],
        "vague": ["{ip} says {male} was being inappropriate with her {place}"],
    },
    "17A": {
        "clear": ["male {ip} says {male} grabbed his crotch {place}"],
        "vague": ["male {ip} says {male} got too close {place}"],
    },
    "23": {
        "clear": [
            "{male} exposed himself to {ip} {place}",
            "male seen performing indecent act in car park, {ip} upset",
            "{ip} found {male} filming her in the changing rooms",
        ],
        "vague": ["{ip} saw {male} acting strangely {place}"],
    },
    "34B": {
        "clear": [
            '{ip}: "he said give me your phone or ill stab you"',
            "{ip} approached by {male} who {rob_force} his {item} {place}",
            "{ip} says {male} {rob_force} her {item}. {quote}",
            "{ip} surrounded by 3 youths, one {rob_force} his {item}",
        ],
        "vague": [
            "{ip}'s {item} {snatch} by {male} {place}",
            "{male} {snatch} {ip}'s {item} {when}",
        ],
    },
    "34A": {
        "clear": [
            "staff threatened with {weapon} at the till, cash taken",
            "{male} came into shop with {weapon} and demanded the till money",
        ],
        "vague": ["till money taken from shop, staff upset"],
    },
    "28E": {
        "clear": [
            '{ip}: "theyve been through all my drawers", {entry}',
            "{quote} {ip} came back from holiday, {entry}, telly and {item} gone",
            "{ip} returned home to find {entry}, {item} taken",
            "{entry}. {item} and {item} taken from the house. {quote}",
            "{ip} woke up, {entry}, {item} gone from the kitchen",
        ],
        "vague": [
            "{ip}'s {item} missing from the house, unsure how",
            "{item} gone from {ip}'s home {when}",
        ],
    },
    "28F": {
        "clear": [
            "{ip} found {no_entry} at her house {when}",
            "{no_entry} at home address, nothing taken",
        ],
        "vague": ["{ip} thinks someone tried to get into the house"],
    },
    "30C": {
        "clear": [
            "shop broken into overnight, {entry}, {item} taken",
            "school broken into, office door forced and laptops taken",
            "builders yard entered overnight, tools taken from locked store",
        ],
        "vague": ["items missing from business premises, no sign of how"],
    },
    "30D": {
        "clear": [
            "{no_entry} at the shop overnight",
            "attempt to break into the community centre, door damaged",
        ],
        "vague": ["damage found at business premises"],
    },
    "37.2": {
        "clear": ["stolen car driven at speed and crashed into wall, occupants ran off"],
        "vague": ["car found crashed, reg comes back stolen"],
    },
    "48": {
        "clear": [
            "{ip}'s car taken from outside address overnight, keys still in house",
            "{ip}'s van gone from driveway, no one had permission to take it",
        ],
        "vague": ["{ip}'s car not where he left it"],
    },
    "45": {
        "clear": [
            "{ip}'s car window smashed and {item} taken from inside",
            "items taken from {ip}'s van overnight, lock punched",
        ],
        "vague": ["{item} missing from {ip}'s car"],
    },
    "126": {
        "clear": [
            "{male} seen trying car door handles along the street, one car door opened",
            "{ip}'s car steering column tampered with, nothing taken",
        ],
        "vague": ["{male} seen looking into cars {place}"],
    },
    "39": {
        "clear": [
            "{ip}'s {item} taken from her pocket on the bus without her noticing",
            "{ip}'s {item} lifted from her bag while shopping {place}",
            "{male} {snatch} {ip}'s {item} from her hand and ran off, no force used",
        ],
        "vague": ["{ip} realised {item} gone after being in a crowd"],
    },
    "40": {
        "clear": [
            "{ip} believes the carer has taken cash from the house",
            "{ip} says her lodger has been taking money from her purse",
        ],
        "vague": ["money missing from {ip}'s house"],
    },
    "44": {
        "clear": ["manager reports staff member taking money from the till, seen on cctv"],
        "vague": ["till shortages at the shop, staff suspected"],
    },
    "46": {
        "clear": [
            "store security report {male} left without paying for {goods}",
            "{male} concealed {goods} in bag and walked out of the shop",
            "shop staff detained {male} for taking {goods}",
        ],
        "vague": ["shop reports {goods} taken {when}"],
    },
    "49": {
        "clear": [
            '{ip}: "someone has nicked my bike from the rack, it was locked"',
            "{quote} {ip} left {item} on the bench for a minute and when she turned round "
            "it was gone, {male} seen walking off with it",
            "{ip}'s push bike taken from outside the station, was locked",
            "parcel taken from {ip}'s doorstep, seen on ring doorbell",
            "{ip}'s {item} taken from table {place} while she was distracted",
            "{ip}'s {item} taken from changing room at the gym",
        ],
        "vague": ["{ip} cant find her {item}, thinks someone may have taken it"],
    },
    "56A": {
        "clear": [
            "fire set at front door of flat while family inside",
            "petrol poured through letterbox and set alight, occupants escaped",
        ],
        "vague": ["small fire at front door, put out"],
    },
    "56B": {
        "clear": [
            "wheelie bin set alight outside {ip}'s house",
            "car deliberately set on fire on the estate",
        ],
        "vague": ["bin fire reported"],
    },
    "58A": {
        "clear": [
            "{ip}'s front window smashed {when}",
            "{known} kicked {ip}'s door and broke it",
            "eggs and paint thrown at {ip}'s house",
        ],
        "vague": ["damage at {ip}'s home"],
    },
    "58B": {
        "clear": ["graffiti sprayed on the school wall", "shop window smashed overnight"],
        "vague": ["damage to building {place}"],
    },
    "58C": {
        "clear": [
            "{ip}'s car keyed down one side",
            "tyres slashed on {ip}'s car",
            "{male} kicked wing mirror off {ip}'s car",
        ],
        "vague": ["{ip}'s car damaged {when}"],
    },
    "58D": {
        "clear": [
            '"my ex came round and smashed my phone" says {ip}',
            "{ip}'s fence kicked down {when}",
            "{known} smashed {ip}'s phone in temper",
            "plants and garden ornaments smashed",
        ],
        "vague": ["damage in {ip}'s garden"],
    },
    "9A": {
        "clear": [
            "{male} shouting and swearing at {ip} {place}, IP felt alarmed and distressed",
            "group of youths being abusive and threatening to shop staff",
            "{known} screaming abuse in the street at {ip}, IP frightened",
        ],
        "vague": ["{male} being loud and abusive {place}"],
    },
    "10D": {
        "clear": [
            "{male} seen with knife in waistband {place}, stop search found lock knife",
            "{male} searched, found with {weapon} in bag",
        ],
        "vague": ["{male} reported to have a weapon {place}"],
    },
    "92D": {
        "clear": [
            "smell of cannabis from {male}, small bag of herbal cannabis found",
            "youths smoking cannabis {place}, one found in possession",
        ],
        "vague": ["smell of cannabis {place}"],
    },
    "92A": {
        "clear": ["{male} seen dealing from a car {place}, wraps found"],
        "vague": ["suspected drug activity {place}"],
    },
}

# Incidents that disclose no crime, by call type: many use crime words.
NON_CRIME: dict[str, list[str]] = {
    "ASSAULT": [
        "{ip} says {known} threatened to punch him last year, nothing since, wants it noted",
        "{ip} fell over drunk {place}, initially said assaulted, now says no one touched him",
        "report of fight {place}, all parties gone on arrival, no complainant, no injured persons",
        "caller says {male} assaulted him but cctv shows no contact, no offences disclosed",
        "argument between 2 males {place}, no assault took place, words of advice",
        "{ip} states she was nearly assaulted, {male} walked off, no threats or contact",
    ],
    "DOMESTIC": [
        '"we were just shouting, he never touched me" {ip} states, no offences',
        "{ip} says {known} has a knife in the kitchen and she is scared he might use it, "
        "no threats made tonight",
        "{quote} {ip} wants {known} removed from address, no assault or threats, civil advice",
        "verbal argument between {ip} and {known}, no assault, no threats, both calm. DASH std",
        "{ip} worried her ex may assault her when he is released, no offences disclosed",
        "{known} keeps ringing about child contact, civil matter, no threats made",
        "DV - verbal only. {ip} states nothing physical happened. {quote}",
    ],
    "SEXUAL": [
        "third party report female may have been assaulted at a party, female spoken to, "
        "states nothing happened",
        "concern about older male messaging teenager, messages checked, nothing sexual",
        "{ip} unsure whether anything happened after night out, no disclosure made, advice given",
    ],
    "ROBBERY": [
        "{ip} says youths demanded his {item} in a jokey way, they are his mates, no offences",
        "caller believed he had been robbed, later found wallet in the car",
        "{ip} reports robbery, on enquiry {item} was lent to a friend and returned",
    ],
    "BURGLARY": [
        "{ip} thinks someone has been in the shed, nothing missing, no damage, no sign of entry",
        "intruder alarm activation, premises secure, no sign of entry",
        "caller heard noises downstairs, checked house, nothing disturbed, all doors secure",
        "{ip} reports burglary, {item} later found, nothing taken, no damage",
    ],
    "THEFT": [
        '"i thought it was stolen but my son had it" - {ip}, no offences',
        "{ip} says {known} kept her {item} after they split up, ownership disputed, civil",
        "caller reports {item} stolen, {item} later found at friends house",
        "dispute with shop over refund, not a theft, advised",
        "{ip} thought {item} stolen {place} but had left it at home",
    ],
    "VEHICLE": [
        "car reported stolen was repossessed by finance company",
        "car reported stolen, towed by council",
        "{ip}'s car not stolen, partner had borrowed it",
    ],
    "DAMAGE": [
        "damage to fence caused by storm",
        "accidental damage, neighbour offered to pay",
        "{ip} reports damage to car, likely hit in car park, no witnesses, insurance matter",
    ],
    "THREATS": [
        "caller says {male} looked at her in a threatening way, no threats made",
        "online argument, no threats or offensive content seen",
        "{ip} concerned about post on social media, not directed at her, no offences",
    ],
    "ASB": [
        "youths gathering {place}, shouting, kicking a football against cars, no damage",
        "group causing nuisance in the park, dispersed on arrival",
        "motorbikes riding on the field, gone on arrival",
        "youths knocking on doors and running off, no damage caused",
    ],
    "WELFARE": [
        "{ip} heard shouting and a bang, attended, couple arguing, nobody hurt, no offences",
        "female heard screaming from flat, on arrival children playing, all safe and well",
        "concern for elderly male not seen for days, found safe and well",
        "{ip} low in mood, threats of self harm, referred to mental health team",
        "caller concerned for neighbour after shouting heard, spoken to, no injuries, "
        "no offences disclosed",
    ],
    "CIVIL": [
        "dispute over boundary fence, civil matter",
        "landlord dispute over deposit, civil matter, advised",
        "argument over unpaid building work, civil matter advised",
        "{ip} says {known} owes her money, civil dispute, no theft",
    ],
    "LOST": [
        "{ip} lost purse in town, believes dropped it, no suggestion of theft",
        "found property: bank card handed in at front counter",
        "{ip} lost {item} on the bus, no suggestion it was stolen",
    ],
    "RTC": [
        "2 vehicle RTC, no injuries, details exchanged",
        "damage only collision in car park",
        "RTC {place}, one driver complaining of neck pain, ambulance not required",
    ],
    "SUSPICIOUS": [
        "{male} seen looking into cars {place}, area search negative",
        "suspicious vehicle parked up, checks fine, occupant waiting for friend",
        "caller saw torch light in neighbours garden, no trace, property secure",
    ],
    "NOISE": [
        "loud music from party, occupants asked to turn it down",
        "neighbours arguing loudly, no threats heard",
        "dog barking all night",
    ],
    "MISSING": [
        "15yr old not returned home, later returned safe and well",
        "{ip} reports husband missing, located at friends address",
    ],
}

# Stories that fit a crime and a non-crime equally well: the text alone cannot settle them,
# as in real logs, where an auditor needs the rest of the record. Keyed by call type.
AMBIGUOUS: dict[str, list[str]] = {
    "ASSAULT": [
        "fight {place} between 2 males, both refuse to say what happened",
        "{ip} says {male} went for him {place}, {male} says {ip} started it, conflicting accounts",
        "{ip} left a voicemail saying she had been hit, callback unanswered",
    ],
    "DOMESTIC": [
        "{ip} says {known} pushed her during argument, {known} says it was the other way round",
        "DV - {ip} and {known} arguing, {ip} has a red mark on her arm, says she cant remember how",
        "{ip} says {known} threatened her, {known} says he only said he would go to court",
        "{quote} {ip} says things have been bad with {known} for months, will not say more",
    ],
    "SEXUAL": [
        "{ip} thinks her drink was spiked {place}, no memory of the rest of the night",
        "{ip} says {male} made her uncomfortable {place}, unsure exactly what happened",
    ],
    "ROBBERY": ["{ip} says youths took his {item} {place}, account keeps changing"],
    "BURGLARY": [
        "{ip} thinks someone has been in her house, some items moved, no sign of forced entry",
        "{ip} says back door found open when she got home, unsure if anything taken",
    ],
    "THEFT": [
        "{ip} reports {item} missing {place}, not sure if lost or stolen",
        "{ip} says {known} took money from her account, {known} says she agreed to it",
        "{item} gone from {ip}'s bag after night out, may have left it in a taxi",
    ],
    "VEHICLE": ["{ip}'s car has been moved and a window is open, nothing obviously missing"],
    "DAMAGE": [
        "damage to {ip}'s car, could have been a collision or deliberate",
        "{ip}'s fence damaged overnight, could be the wind or kids",
    ],
    "THREATS": [
        "{ip} received messages from {known}, finds them upsetting, content not seen by officers",
        "{ip} says {male} followed her {place}, she felt uneasy",
    ],
    "ASB": [
        "report of youths throwing stones at cars {place}, unclear whether any damage",
        "group of youths shouting at passers by {place}, one woman upset",
    ],
    "WELFARE": [
        "concern for female {place} who was crying and said her partner would kill her",
        "{ip} has bruising, says she fell, neighbour thinks otherwise",
    ],
    "CIVIL": [
        "{ip} says builder took a deposit and never came back, builder says job is booked",
        "{ip} and {known} dispute who owns the car, {known} has taken it",
    ],
    "LOST": ["{ip} lost {item} {place}, thinks someone may have picked her bag"],
    "SUSPICIOUS": ["{male} seen in {ip}'s garden at night, gone on arrival, shed door open"],
}

# Call types whose non-crime incidents are sometimes told like a vague crime.
VAGUE_LOOKALIKES: dict[str, list[str]] = {
    "LOST": ["49", "39"], "CIVIL": ["49", "8L"], "ASB": ["9A", "58D"],
    "WELFARE": ["105A", "8L"], "DOMESTIC": ["105A", "8L", "8R"], "THREATS": ["8L", "8R"],
    "SUSPICIOUS": ["126", "28F"], "ASSAULT": ["105A", "8N"], "THEFT": ["49", "46"],
    "BURGLARY": ["28F", "28E"], "VEHICLE": ["45", "126"], "DAMAGE": ["58D", "58C"],
    "SEXUAL": ["20A"], "ROBBERY": ["34B"],
}

# Text styles: each narrative is written in one of these (a per-row choice), applied by batches.
STYLES: list[tuple[float, list[tuple[str, str]]]] = [
    (0.35, []),
    (
        0.25,
        [
            ("victim", "IP"),
            ("suspect", "susp"),
            ("with", "w/"),
            ("statement", "w/s"),
            ("no further action", "NFA"),
            ("approx", "approx."),
            ("hospital", "hosp"),
            ("domestic", "DV"),
            ("officers", "ofcrs"),
        ],
    ),
    (
        0.2,
        [
            ("received", "recieved"),
            ("the", "teh"),
            ("said", "siad"),
            ("because", "becuase"),
            ("neighbour", "nieghbour"),
            ("assaulted", "assualted"),
            ("there", "their"),
            ("address", "adress"),
            ("police", "plice"),
            ("taken", "takn"),
        ],
    ),
    (0.1, [("and", "&"), ("with", "w/"), ("IP", "I/P"), ("police", "pol")]),
]
UPPER_SHARE = 0.1


class _Template:
    def __init__(self, text: str):
        self.parts = [p for p in re.split(r"(\{\w+\})", text) if p]

    def render(self, rng: np.random.Generator, g: int) -> pa.Array:
        pieces = []
        for part in self.parts:
            if part.startswith("{") and part.endswith("}"):
                vocab = _VOCAB[part[1:-1]]
                pieces.append(vocab.take(pa.array(rng.integers(0, len(vocab), g))))
            else:
                pieces.append(pa.scalar(part))
        if all(isinstance(p, pa.Scalar) for p in pieces):
            return pa.repeat(pa.scalar("".join(p.as_py() for p in pieces)), g)
        return pc.binary_join_element_wise(*pieces, "")


_VOCAB = {k: pa.array(v, pa.string()) for k, v in WORDS.items()}


def _stories() -> list[tuple[str, list[_Template]]]:
    out = []
    for code, kinds in CRIME.items():
        out.append((f"crime:{code}", [_Template(t) for t in kinds["clear"]]))
        out.append((f"vague:{code}", [_Template(t) for t in kinds["vague"]]))
    for t, texts in NON_CRIME.items():
        out.append((f"non:{t}", [_Template(x) for x in texts]))
    for t, texts in AMBIGUOUS.items():
        out.append((f"ambiguous:{t}", [_Template(x) for x in texts]))
    return out


_STORIES = dict(_stories())
_GENERIC = [_Template("{ip} reports an offence {place} {when}")]


def write(
    rng: np.random.Generator,
    types: list[str],
    type_code: np.ndarray,
    discloses: np.ndarray,
    true_code: np.ndarray,
    book: OffenceBook,
    severity: np.ndarray,
    style: NarrativeStyle | None = None,
) -> pa.Array:
    """One narrative per row.

    A crime whose ``severity`` draw is below ``style.ambiguous_share`` is told in words that
    fit a non-crime of its call type as well; the next ``style.vague_share`` are told without
    the detail that fixes the class. Non-crimes are sometimes told in the same ambiguous or
    vague words.
    """
    style = style or NarrativeStyle()
    n = len(type_code)
    type_name = np.asarray(types, dtype=object)[type_code]
    has_amb = np.isin(type_name, list(AMBIGUOUS))
    crime_code = np.asarray(book.code, dtype=object)[np.maximum(true_code, 0)]
    amb = severity < style.ambiguous_share
    vague = ~amb & (severity < style.ambiguous_share + style.vague_share)
    vague |= amb & ~has_amb
    amb &= has_amb
    key = "non:" + type_name
    key[discloses] = "crime:" + crime_code[discloses]
    key[discloses & vague] = "vague:" + crime_code[discloses & vague]
    key[discloses & amb] = "ambiguous:" + type_name[discloses & amb]
    u = rng.random(n)
    non_amb = ~discloses & has_amb & (u < style.non_crime_ambiguous_share)
    key[non_amb] = "ambiguous:" + type_name[non_amb]
    has_look = np.isin(type_name, list(VAGUE_LOOKALIKES))
    non_vague = ~discloses & has_look & ~non_amb & (
        u < style.non_crime_ambiguous_share + style.non_crime_vague_share)
    for t, codes in VAGUE_LOOKALIKES.items():
        rows = np.flatnonzero(non_vague & (type_name == t))
        if len(rows):
            pick = np.asarray(codes, dtype=object)[rng.integers(0, len(codes), len(rows))]
            key[rows] = "vague:" + pick
    uniq, inverse = np.unique(key.astype(str), return_inverse=True)
    chunks, positions = [], []
    for k, story in enumerate(uniq):
        rows = np.flatnonzero(inverse == k)
        templates = _STORIES.get(story) or _GENERIC
        which = rng.integers(0, len(templates), len(rows))
        for j, tpl in enumerate(templates):
            sel = rows[which == j]
            if len(sel):
                chunks.append(tpl.render(rng, len(sel)))
                positions.append(sel)
    body = pa.chunked_array(chunks, pa.string()).combine_chunks()
    pos = np.concatenate(positions)
    inv = np.empty(n, np.int64)
    inv[pos] = np.arange(n)
    body = body.take(pa.array(inv))
    # End the body as a sentence so the officer's update reads as a new one.
    body = pc.replace_substring_regex(body, r"([^.!?\"])$", r"\1.")
    opener = _VOCAB["opener"].take(pa.array(rng.integers(0, len(WORDS["opener"]), n)))
    update = _VOCAB["update"].take(pa.array(rng.integers(0, len(WORDS["update"]), n)))
    update2 = _VOCAB["closer"].take(pa.array(rng.integers(0, len(WORDS["closer"]), n)))
    text = pc.binary_join_element_wise(opener, body, update, update2, " ")
    text = pc.utf8_trim_whitespace(pc.replace_substring_regex(text, r"\s{2,}", " "))
    return _style(rng, text)


def _style(rng: np.random.Generator, text: pa.Array) -> pa.Array:
    n = len(text)
    weights = np.array([w for w, _ in STYLES])
    style = np.searchsorted(np.cumsum(weights / weights.sum()), rng.random(n), side="right")
    style = style.clip(0, len(STYLES) - 1)
    for s, (_, rules) in enumerate(STYLES):
        mask = style == s
        if not rules or not mask.any():
            continue
        sub = text.filter(pa.array(mask))
        for old, new in rules:
            sub = pc.replace_substring_regex(sub, rf"\b{re.escape(old)}\b", new)
        text = pc.replace_with_mask(text, pa.array(mask), sub)
    upper = pa.array(rng.random(n) < UPPER_SHARE)
    return pc.replace_with_mask(text, upper, pc.utf8_upper(text.filter(upper)))
