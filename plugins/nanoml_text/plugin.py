"""Entry point of the text plugin: registers its datasets (fortunes, SMS spam), vectorizers
and learners."""

from nanoml import hookimpl
from nanoml_text import fortunes, sms_spam
from nanoml_text.char_rnn import CharRNN
from nanoml_text.pipeline import TextPipeline
from nanoml_text.text_rnn import TextRNN
from nanoml_text.vectorizers import CountVectorizer, HashingVectorizer, TfidfVectorizer


@hookimpl
def register_learners(register):
    register(CountVectorizer)
    register(TfidfVectorizer)
    register(HashingVectorizer)
    register(TextPipeline)
    register(TextRNN)
    register(CharRNN)


@hookimpl
def register_datasets(register):
    register("fortunes", fortunes.fortunes,
             "Debian fortunes, 4 categories (computers, science, songs-poems, politics): "
             "3,099 texts", available=fortunes.available, pipeline="text-pipeline")
    register("fortunes-all", fortunes.fortunes_all,
             "Debian fortunes, every category: about 15,000 texts, 43 classes",
             available=fortunes.available, pipeline="text-pipeline")
    register("sms-spam", sms_spam.load,
             "SMS Spam Collection: 5,574 text messages, ham or spam (downloaded from UCI once, "
             "SHA-256 checked)", available=sms_spam.available, pipeline="text-pipeline")
