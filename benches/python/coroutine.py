# coroutine.py (the seed's decorator): prime a generator so it can take send()
def coroutine(func):
    def start(*args, **kwargs):
        cr = func(*args, **kwargs)
        next(cr)
        return cr
    return start
